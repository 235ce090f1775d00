#pragma once
// "host:port" and "[v6]:port" strings from the configuration, split and resolved.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace mailgate::net {

struct host_port {
    std::string host;  // without brackets
    std::uint16_t port = 0;
};

std::optional<host_port> split_host_port(std::string_view text);

// Numeric addresses resolve without I/O; names go through the system resolver (at
// configuration time only, never on the request path). Empty on failure, with `error` set.
std::vector<boost::asio::ip::tcp::endpoint> resolve(const host_port& hp, std::string& error);

// "1.2.3.4" / "::1" without port, IPv4-mapped IPv6 shown as IPv4.
std::string ip_string(const boost::asio::ip::address& a);

}  // namespace mailgate::net
