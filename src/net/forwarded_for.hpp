#pragma once
// The client address behind trusted reverse proxies, from X-Forwarded-For: IIS "proxy mode",
// done safely. Nothing here allocates, so it may run for every request.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "net/cidr_set.hpp"

namespace mailgate::net {

// IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 address it carries; anything else unchanged.
boost::asio::ip::address canonical_address(const boost::asio::ip::address& a);

// Strict numeric literals, as proxies and load balancers print them. IPv4: four decimal
// octets 0-255 without leading zeros (so "010.0.0.1" cannot be octal to one parser and decimal
// to another). IPv6: RFC 4291 text form, embedded IPv4 allowed, no zone id, no brackets.
std::optional<boost::asio::ip::address_v4> parse_ipv4_literal(std::string_view text);
std::optional<boost::asio::ip::address_v6> parse_ipv6_literal(std::string_view text);
// Decimal 0-65535 without sign or leading zero ("0" itself is fine).
std::optional<std::uint16_t> parse_port_literal(std::string_view text);

// One X-Forwarded-For list element, with optional spaces and tabs around it: "1.2.3.4",
// "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443". The port is checked
// and dropped; the address comes back canonical. "unknown", obfuscated identifiers
// ("_hidden"), host names, zone ids, bracketed IPv4, empty text: nullopt.
std::optional<boost::asio::ip::address> parse_forwarded_element(std::string_view element);

// The address that rules, limits and the access log see for a request.
//
// `peer` is the socket peer, or the PROXY header's source. `forwarded_for` holds the value of
// every X-Forwarded-For field of the request, in the order received (as views into the
// request head, e.g. a std::array<std::string_view, N> on the stack); together they form one
// comma-separated list, as if the fields were joined (RFC 9110 section 5.3).
//
// - peer not in `trusted`: the peer; the header is not even looked at.
// - otherwise the list is walked from the right, where the trusted proxy appended what it
//   saw, and the first address not in `trusted` is the client. Addresses in `trusted` are
//   proxies of ours and are passed over. Empty list elements are ignored (RFC 9110 5.6.1).
// - a malformed element stops the walk: the last address passed over (a trusted one) is the
//   client, or the peer if there was none.
// - every element trusted: the leftmost address.
// - no X-Forwarded-For field, or only empty ones: the peer.
//
// Why this is safe: a client can only add elements to the left of what our proxies append,
// and the walk stops at the first untrusted address, which a trusted proxy wrote. Forged
// elements are reached only when the real client is itself in `trusted`.
// The result is canonical (IPv4-mapped as IPv4), the peer included.
boost::asio::ip::address resolve_client(const boost::asio::ip::address& peer,
                                        const cidr_set& trusted,
                                        std::span<const std::string_view> forwarded_for);

}  // namespace mailgate::net
