#include "net/forwarded_for.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace mailgate::net {
namespace asio = boost::asio;

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex_or_ipv6_punct(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

asio::ip::address canonical_address(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

std::optional<asio::ip::address_v4> parse_ipv4_literal(std::string_view text) {
    std::uint32_t value = 0;
    for (int octet = 0; octet < 4; ++octet) {
        if (octet > 0) {
            if (text.empty() || text.front() != '.') return std::nullopt;
            text.remove_prefix(1);
        }
        std::size_t len = 0;
        unsigned part = 0;
        while (len < text.size() && len < 4 && is_digit(text[len]))
            part = part * 10 + static_cast<unsigned>(text[len++] - '0');
        if (len == 0 || len > 3 || part > 255 || (len > 1 && text.front() == '0'))
            return std::nullopt;
        value = (value << 8) | part;
        text.remove_prefix(len);
    }
    if (!text.empty()) return std::nullopt;
    return asio::ip::address_v4(value);
}

std::optional<asio::ip::address_v6> parse_ipv6_literal(std::string_view text) {
    // The character check keeps zone ids ("%eth0") and anything else inet_pton might take
    // out; the copy to a stack buffer is only for the terminating NUL.
    char buffer[INET6_ADDRSTRLEN];
    if (text.size() < 2 || text.size() >= sizeof buffer) return std::nullopt;
    for (const char c : text)
        if (!is_hex_or_ipv6_punct(c)) return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    asio::ip::address_v6::bytes_type bytes;
    static_assert(sizeof bytes == sizeof(in6_addr));
    in6_addr raw;
    if (::inet_pton(AF_INET6, buffer, &raw) != 1) return std::nullopt;
    std::memcpy(bytes.data(), &raw, sizeof raw);
    return asio::ip::address_v6(bytes);
}

std::optional<std::uint16_t> parse_port_literal(std::string_view text) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0'))
        return std::nullopt;
    std::uint32_t value = 0;
    for (const char c : text) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

std::optional<asio::ip::address> parse_forwarded_element(std::string_view element) {
    const auto e = trim_ows(element);
    if (e.empty()) return std::nullopt;

    if (e.front() == '[') {
        const auto close = e.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const auto tail = e.substr(close + 1);
        if (!tail.empty() && (tail.front() != ':' || !parse_port_literal(tail.substr(1))))
            return std::nullopt;
        const auto v6 = parse_ipv6_literal(e.substr(1, close - 1));
        if (!v6) return std::nullopt;
        return canonical_address(asio::ip::address(*v6));
    }

    const auto colon = e.find(':');
    if (colon == std::string_view::npos || e.find(':', colon + 1) == std::string_view::npos) {
        // No colon, or exactly one: IPv4, perhaps with a port. Two or more: bare IPv6, which
        // cannot carry a port without brackets.
        const auto v4 = parse_ipv4_literal(e.substr(0, colon));
        if (!v4) return std::nullopt;
        if (colon != std::string_view::npos && !parse_port_literal(e.substr(colon + 1)))
            return std::nullopt;
        return asio::ip::address(*v4);
    }
    const auto v6 = parse_ipv6_literal(e);
    if (!v6) return std::nullopt;
    return canonical_address(asio::ip::address(*v6));
}

asio::ip::address resolve_client(const asio::ip::address& peer, const cidr_set& trusted,
                                 std::span<const std::string_view> forwarded_for) {
    auto client = canonical_address(peer);
    if (!trusted.contains(client)) return client;

    // Right to left over the fields, and within each field over its elements.
    for (auto field = forwarded_for.rbegin(); field != forwarded_for.rend(); ++field) {
        std::string_view rest = *field;
        for (;;) {
            const auto comma = rest.rfind(',');
            const auto element =
                trim_ows(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
            if (!element.empty()) {
                const auto address = parse_forwarded_element(element);
                if (!address) return client;
                if (!trusted.contains(*address)) return *address;
                client = *address;
            }
            if (comma == std::string_view::npos) break;
            rest = rest.substr(0, comma);
        }
    }
    return client;
}

}  // namespace mailgate::net
