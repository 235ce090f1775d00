#include "http/header_policy.hpp"

#include <boost/beast/core/string.hpp>

namespace mailgate::http {

bool header_policy::strips(std::string_view name) const {
    for (const auto& r : remove)
        if (boost::beast::iequals(r, name)) return true;
    for (const auto& [n, v] : add)
        if (boost::beast::iequals(n, name)) return true;
    return boost::beast::iequals(name, "strict-transport-security") && !hsts.empty();
}

void header_policy::append_fields(std::string& out) const {
    for (const auto& [n, v] : add) {
        out.append(n).append(": ").append(v).append("\r\n");
    }
    out.append(hsts);
}

}  // namespace mailgate::http
