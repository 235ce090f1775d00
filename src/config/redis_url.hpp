#pragma once
// `store: "redis://[:password@]host[:port][/db]"`: where shared limiter state lives.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::config {

struct redis_endpoint {
    std::string host;  // a name, an IPv4 address or a bracketed IPv6 address (unbracketed)
    std::uint16_t port = 6379;
    unsigned db = 0;
    std::string password;  // AUTH; empty: none
};

// nullopt with `why` set when `url` is not a usable redis:// URL.
std::optional<redis_endpoint> parse_redis_url(std::string_view url, std::string& why);

// True for 127.0.0.0/8, ::1 and "localhost": the only places a plaintext Redis connection
// (hiredis 0.14 has no TLS) cannot be read or altered on the wire.
bool is_loopback_host(std::string_view host);

}  // namespace mailgate::config
