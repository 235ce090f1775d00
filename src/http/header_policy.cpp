#include "http/header_policy.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>

namespace mailgate::http {
namespace {

bool names(const header_policy::field_list& list, std::string_view name) {
    return std::any_of(list.begin(), list.end(),
                       [&](const auto& f) { return boost::beast::iequals(f.first, name); });
}

bool lists(const std::vector<std::string>& list, std::string_view name) {
    return std::any_of(list.begin(), list.end(),
                       [&](const auto& n) { return boost::beast::iequals(n, name); });
}

}  // namespace

header_policy header_policy::merged(const header_policy& global, const header_policy& local) {
    const auto mentioned = [&](std::string_view name) {
        return lists(local.remove, name) || names(local.add, name) || names(local.set, name);
    };
    header_policy out;
    out.remove = global.remove;
    for (const auto& n : local.remove)
        if (!lists(out.remove, n)) out.remove.push_back(n);
    for (const auto* list : {&global.set, &global.add}) {
        auto& target = list == &global.set ? out.set : out.add;
        for (const auto& f : *list)
            if (!mentioned(f.first)) target.push_back(f);
    }
    out.set.insert(out.set.end(), local.set.begin(), local.set.end());
    out.add.insert(out.add.end(), local.add.begin(), local.add.end());
    return out;
}

bool header_policy::strips(std::string_view name) const {
    return lists(remove, name) || names(set, name);
}

std::uint64_t header_policy::added_mask(std::string_view name) const {
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < add.size() && i < 64; ++i)
        if (boost::beast::iequals(add[i].first, name)) mask |= std::uint64_t{1} << i;
    return mask;
}

void header_policy::append_fields(std::string& out, std::uint64_t present,
                                  std::string_view hsts) const {
    for (const auto& [n, v] : set) out.append(n).append(": ").append(v).append("\r\n");
    for (std::size_t i = 0; i < add.size(); ++i) {
        if (i < 64 && (present & (std::uint64_t{1} << i)) != 0) continue;
        out.append(add[i].first).append(": ").append(add[i].second).append("\r\n");
    }
    out.append(hsts);
}

}  // namespace mailgate::http
