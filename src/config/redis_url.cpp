#include "config/redis_url.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace mailgate::config {
namespace {

template <class T>
bool number(std::string_view text, T max, T& out) {
    unsigned long long v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || v > max)
        return false;
    out = static_cast<T>(v);
    return true;
}

}  // namespace

std::optional<redis_endpoint> parse_redis_url(std::string_view url, std::string& why) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        why = "expected redis://host:port/db";
        return std::nullopt;
    }
    std::string_view rest = url.substr(scheme.size());
    redis_endpoint out;
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view user_info = rest.substr(0, at);
        rest = rest.substr(at + 1);
        // Redis 6 ACL users are not supported: AUTH with one argument only.
        if (!user_info.starts_with(':')) {
            why = "credentials must be written ':password@' (no user name)";
            return std::nullopt;
        }
        out.password = std::string(user_info.substr(1));
    }
    std::string_view authority = rest;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        authority = rest.substr(0, slash);
        const auto db = rest.substr(slash + 1);
        if (!db.empty() && !number<unsigned>(db, 15, out.db)) {
            why = "database must be a number from 0 to 15";
            return std::nullopt;
        }
    }
    std::string_view port;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            why = "unclosed '[' in the host";
            return std::nullopt;
        }
        out.host = std::string(authority.substr(1, close - 1));
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') {
                why = "expected ':port' after ']'";
                return std::nullopt;
            }
            port = after.substr(1);
        }
    } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
        out.host = std::string(authority.substr(0, colon));
        port = authority.substr(colon + 1);
    } else {
        out.host = std::string(authority);
    }
    if (out.host.empty()) {
        why = "no host";
        return std::nullopt;
    }
    if (!port.empty() && (!number<std::uint16_t>(port, 65535, out.port) || out.port == 0)) {
        why = "port must be a number from 1 to 65535";
        return std::nullopt;
    }
    return out;
}

bool is_loopback_host(std::string_view host) {
    if (host == "localhost") return true;
    const std::string h(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    return ::inet_pton(AF_INET6, h.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace mailgate::config
