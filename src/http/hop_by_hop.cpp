#include "http/hop_by_hop.hpp"

#include <algorithm>
#include <array>

#include "http/ascii.hpp"

namespace mailgate::http {

namespace {

// Connection-specific fields (RFC 9110 7.6.1) plus the framing fields, which mailgate
// rebuilds for the next hop instead of copying (ANCHORS-CODE.md section 1).
constexpr std::array<std::string_view, 8> always_hop_by_hop = {
    "connection", "keep-alive",        "proxy-connection", "te",
    "trailer",    "transfer-encoding", "content-length",   "upgrade",
};

// Connection names fields, so anything that is not a token cannot name one.
bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return ascii::is_tchar(c); });
}

}  // namespace

hop_by_hop_set::hop_by_hop_set(const boost::beast::http::fields& fields) {
    // Not equal_range: in Beast 1.81 it spans the insertion-ordered list between the first and
    // last Connection field, fields of other names in between included.
    for (auto it = fields.begin(); it != fields.end(); ++it) {
        if (it->name() != boost::beast::http::field::connection) continue;
        ascii::for_each_list_token(it->value(), [&](std::string_view token) {
            if (!is_token(token)) return true;
            std::string lower(token);
            for (char& c : lower) c = ascii::to_lower(c);
            if (std::find(named_.begin(), named_.end(), lower) == named_.end()) {
                named_.push_back(std::move(lower));
            }
            return true;
        });
    }
}

bool hop_by_hop_set::is_hop_by_hop(std::string_view name) const {
    for (const std::string_view fixed : always_hop_by_hop) {
        if (ascii::iequals(name, fixed)) return true;
    }
    for (const std::string& named : named_) {
        if (ascii::iequals(name, named)) return true;
    }
    return false;
}

}  // namespace mailgate::http
