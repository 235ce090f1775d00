// X-Forwarded-For behind trusted proxies: who may set it, which element is believed, and the
// strict literal parsers it shares with the PROXY v1 parser.
#include "net/forwarded_for.hpp"

#include <gtest/gtest.h>

#include <array>
#include <initializer_list>
#include <string>
#include <vector>

namespace mailgate::net {
namespace {

namespace asio = boost::asio;

asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }

cidr_set make_set(std::initializer_list<const char*> cidrs) {
    cidr_set set;
    std::string error;
    for (const char* c : cidrs) EXPECT_TRUE(set.add(c, error)) << c << ": " << error;
    set.finalize();
    return set;
}

// A load balancer at 10.0.0.0/24 and a local proxy, as an operator would list them.
const cidr_set& trusted() {
    static const cidr_set set = make_set({"10.0.0.0/24", "127.0.0.1/32", "2001:db8:ff::/48"});
    return set;
}

asio::ip::address resolve(const char* peer, std::vector<std::string_view> fields) {
    return resolve_client(ip(peer), trusted(), fields);
}

// --- literals ------------------------------------------------------------------------------

TEST(IpLiteral, V4) {
    EXPECT_EQ(parse_ipv4_literal("0.0.0.0"), asio::ip::make_address_v4("0.0.0.0"));
    EXPECT_EQ(parse_ipv4_literal("255.255.255.255"), asio::ip::make_address_v4("255.255.255.255"));
    EXPECT_EQ(parse_ipv4_literal("192.0.2.10"), asio::ip::make_address_v4("192.0.2.10"));
    for (const char* bad : {"", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.04", "01.2.3.4",
                            "1.2.3.", ".1.2.3", "1..2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4",
                            "0x1.2.3.4", "1.2.3.1000", "1.2.3.4/32", "1.2.3.4:80"}) {
        EXPECT_FALSE(parse_ipv4_literal(bad)) << bad;
    }
}

TEST(IpLiteral, V6) {
    EXPECT_EQ(parse_ipv6_literal("::1"), asio::ip::make_address_v6("::1"));
    EXPECT_EQ(parse_ipv6_literal("2001:DB8::A"), asio::ip::make_address_v6("2001:db8::a"));
    EXPECT_EQ(parse_ipv6_literal("::ffff:192.0.2.1"),
              asio::ip::make_address_v6("::ffff:192.0.2.1"));
    EXPECT_TRUE(parse_ipv6_literal("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"));
    for (const char* bad :
         {"", ":", "1.2.3.4", "2001:db8::1%eth0", "[::1]", "2001:db8:::1", "1:2:3:4:5:6:7:8:9",
          "2001:db8::g", "2001:db8::10000", " ::1", "::ffff:192.0.2.01", "::1/128"}) {
        EXPECT_FALSE(parse_ipv6_literal(bad)) << bad;
    }
    EXPECT_FALSE(parse_ipv6_literal(std::string(64, ':')));
}

TEST(IpLiteral, Port) {
    EXPECT_EQ(parse_port_literal("0"), 0);
    EXPECT_EQ(parse_port_literal("443"), 443);
    EXPECT_EQ(parse_port_literal("65535"), 65535);
    for (const char* bad : {"", "65536", "99999", "100000", "+1", "-1", "01", "00", "1a", " 1"})
        EXPECT_FALSE(parse_port_literal(bad)) << bad;
}

TEST(ForwardedElement, AcceptedForms) {
    const std::vector<std::pair<const char*, const char*>> cases = {
        {"192.0.2.1", "192.0.2.1"},
        {"  192.0.2.1\t", "192.0.2.1"},
        {"192.0.2.1:5678", "192.0.2.1"},
        {"2001:db8::1", "2001:db8::1"},
        {"[2001:db8::1]", "2001:db8::1"},
        {"[2001:db8::1]:443", "2001:db8::1"},
        {" [2001:db8::1]:443 ", "2001:db8::1"},
        {"::ffff:192.0.2.1", "192.0.2.1"},
        {"[::ffff:192.0.2.1]:80", "192.0.2.1"},
    };
    for (const auto& [text, expected] : cases) {
        const auto a = parse_forwarded_element(text);
        ASSERT_TRUE(a) << text;
        EXPECT_EQ(*a, ip(expected)) << text;
    }
    EXPECT_TRUE(parse_forwarded_element("::ffff:192.0.2.1")->is_v4());
}

TEST(ForwardedElement, Malformed) {
    for (const char* bad : {"",
                            "  ",
                            "unknown",
                            "_hidden",
                            "_abc123",
                            "mail.example.com",
                            "localhost",
                            "192.0.2.1:",
                            "192.0.2.1:65536",
                            "192.0.2.1:x",
                            "192.0.2.1:80:80",
                            "[192.0.2.1]",
                            "[2001:db8::1",
                            "2001:db8::1]",
                            "[2001:db8::1]:",
                            "[2001:db8::1]443",
                            "[2001:db8::1]:99999",
                            "2001:db8::1:443x",
                            "[2001:db8::1%eth0]",
                            "fe80::1%25eth0",
                            "192.0.2.1 192.0.2.2",
                            "192.0.2.01",
                            "\"192.0.2.1\"",
                            "for=192.0.2.1"}) {
        EXPECT_FALSE(parse_forwarded_element(bad)) << bad;
    }
}

// --- resolve_client ------------------------------------------------------------------------

TEST(ResolveClient, UntrustedPeerIgnoresHeader) {
    EXPECT_EQ(resolve("192.0.2.50", {"198.51.100.7"}), ip("192.0.2.50"));
    EXPECT_EQ(resolve("192.0.2.50", {"10.0.0.1", "127.0.0.1"}), ip("192.0.2.50"));
    EXPECT_EQ(resolve("192.0.2.50", {}), ip("192.0.2.50"));
    EXPECT_EQ(
        resolve_client(ip("10.0.0.1"), cidr_set{}, std::array<std::string_view, 1>{"1.2.3.4"}),
        ip("10.0.0.1"));
}

TEST(ResolveClient, TrustedPeerWithoutHeaderIsThePeer) {
    EXPECT_EQ(resolve("10.0.0.1", {}), ip("10.0.0.1"));
    EXPECT_EQ(resolve("10.0.0.1", {""}), ip("10.0.0.1"));
    EXPECT_EQ(resolve("10.0.0.1", {" , ,"}), ip("10.0.0.1"));
}

TEST(ResolveClient, TrustedPeerTakesRightmostUntrusted) {
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7"}), ip("198.51.100.7"));
    EXPECT_EQ(resolve("10.0.0.1", {"203.0.113.9, 198.51.100.7"}), ip("198.51.100.7"));
    EXPECT_EQ(resolve("2001:db8:ff::1", {"2001:db8:1::5"}), ip("2001:db8:1::5"));
}

TEST(ResolveClient, ChainOfTrustedProxies) {
    // client -> 127.0.0.1 (local proxy) -> 10.0.0.2 -> 10.0.0.1 -> us
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, 127.0.0.1, 10.0.0.2"}), ip("198.51.100.7"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7,10.0.0.2,[2001:db8:ff::9]:443"}),
              ip("198.51.100.7"));
}

TEST(ResolveClient, ForgedLeftEntriesAreIgnored) {
    // The client claims to be localhost; the balancer appends what it saw.
    EXPECT_EQ(resolve("10.0.0.1", {"127.0.0.1, 203.0.113.66"}), ip("203.0.113.66"));
    EXPECT_EQ(resolve("10.0.0.1", {"127.0.0.1", "203.0.113.66"}), ip("203.0.113.66"));
    EXPECT_EQ(resolve("10.0.0.1", {"unknown, _x, 127.0.0.1, 203.0.113.66"}), ip("203.0.113.66"));
}

TEST(ResolveClient, AllTrustedTakesLeftmost) {
    EXPECT_EQ(resolve("10.0.0.1", {"127.0.0.1, 10.0.0.3, 10.0.0.2"}), ip("127.0.0.1"));
    EXPECT_EQ(resolve("10.0.0.1", {"10.0.0.3"}), ip("10.0.0.3"));
}

TEST(ResolveClient, MalformedStopsTheWalk) {
    // Rightmost malformed: nothing believable was appended, so the peer stands.
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, unknown"}), ip("10.0.0.1"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, _hidden"}), ip("10.0.0.1"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, mail.example.com"}), ip("10.0.0.1"));
    // After trusted hops: the last trusted hop seen, never what lies beyond the bad element.
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, garbage, 10.0.0.2"}), ip("10.0.0.2"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7", "1.2.3.4:99999", "10.0.0.3, 10.0.0.2"}),
              ip("10.0.0.3"));
}

TEST(ResolveClient, EmptyElementsAreSkipped) {
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7,, ,10.0.0.2,"}), ip("198.51.100.7"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7", "", "10.0.0.2"}), ip("198.51.100.7"));
}

TEST(ResolveClient, MultipleFieldsAreOneList) {
    // Fields in arrival order; the last field's last element is the nearest hop.
    EXPECT_EQ(resolve("10.0.0.1", {"203.0.113.1, 203.0.113.2", "203.0.113.3"}), ip("203.0.113.3"));
    EXPECT_EQ(resolve("10.0.0.1", {"203.0.113.1", "203.0.113.2, 10.0.0.5", "10.0.0.4"}),
              ip("203.0.113.2"));
    EXPECT_EQ(resolve("10.0.0.1", {"203.0.113.1, 10.0.0.9", "10.0.0.4"}), ip("203.0.113.1"));
}

TEST(ResolveClient, PortsAndBrackets) {
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7:51000"}), ip("198.51.100.7"));
    EXPECT_EQ(resolve("10.0.0.1", {"[2001:db8:1::5]:51000"}), ip("2001:db8:1::5"));
    EXPECT_EQ(resolve("10.0.0.1", {"[2001:db8:1::5]"}), ip("2001:db8:1::5"));
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7 , 10.0.0.2:443\t"}), ip("198.51.100.7"));
}

TEST(ResolveClient, V4MappedIsNormalized) {
    // A dual-stack socket shows the balancer as ::ffff:10.0.0.1; it is still trusted.
    const auto a = resolve("::ffff:10.0.0.1", {"::ffff:198.51.100.7"});
    EXPECT_TRUE(a.is_v4());
    EXPECT_EQ(a, ip("198.51.100.7"));
    // Trusted hops written mapped are recognised as trusted.
    EXPECT_EQ(resolve("10.0.0.1", {"198.51.100.7, ::ffff:10.0.0.2"}), ip("198.51.100.7"));
    // The peer comes back canonical too, trusted or not.
    EXPECT_EQ(resolve("::ffff:192.0.2.50", {"198.51.100.7"}), ip("192.0.2.50"));
    EXPECT_EQ(resolve("::ffff:10.0.0.1", {}), ip("10.0.0.1"));
    EXPECT_TRUE(resolve("::ffff:10.0.0.1", {}).is_v4());
}

}  // namespace
}  // namespace mailgate::net
