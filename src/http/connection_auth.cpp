#include "http/connection_auth.hpp"

#include <boost/beast/core/string.hpp>

namespace mailgate::http {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_front(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}

bool bound_scheme(std::string_view scheme) {
    return boost::beast::iequals(scheme, "NTLM") || boost::beast::iequals(scheme, "Negotiate");
}

// The auth-scheme token at the start of `s`.
std::string_view scheme_of(std::string_view s) {
    s = trim_front(s);
    std::size_t n = 0;
    while (n < s.size() && !is_space(s[n]) && s[n] != ',') ++n;
    return s.substr(0, n);
}

}  // namespace

bool is_connection_bound_credential(std::string_view authorization) {
    return bound_scheme(scheme_of(authorization));
}

bool carries_connection_bound_auth(const boost::beast::http::fields& request) {
    for (const auto& f : request)
        if (f.name() == boost::beast::http::field::authorization &&
            is_connection_bound_credential(f.value()))
            return true;
    return false;
}

bool offers_connection_bound_auth(const boost::beast::http::fields& response) {
    for (const auto& f : response) {
        if (f.name() != boost::beast::http::field::www_authenticate) continue;
        // Challenges are comma-separated, and so are their parameters: a scheme is the
        // first token of the field or a token that follows a comma and is not "name=".
        std::string_view v = f.value();
        while (!v.empty()) {
            const auto scheme = scheme_of(v);
            const auto rest = trim_front(v).substr(scheme.size());
            if (bound_scheme(scheme) && (rest.empty() || rest.front() != '=')) return true;
            const auto comma = v.find(',');
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return false;
}

}  // namespace mailgate::http
