#include "net/cidr_set.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace {

using mailgate::net::cidr_set;
namespace ip = boost::asio::ip;

ip::address addr(const char* text) { return ip::make_address(text); }

cidr_set make(std::initializer_list<const char*> cidrs) {
    cidr_set s;
    for (const char* c : cidrs) {
        std::string error;
        EXPECT_TRUE(s.add(c, error)) << c << ": " << error;
    }
    s.finalize();
    return s;
}

std::string add_error(const char* cidr) {
    cidr_set s;
    std::string error;
    EXPECT_FALSE(s.add(cidr, error)) << cidr;
    return error;
}

TEST(CidrSet, EmptySetHoldsNothing) {
    const auto s = make({});
    EXPECT_TRUE(s.empty());
    EXPECT_FALSE(s.contains(addr("0.0.0.0")));
    EXPECT_FALSE(s.contains(addr("::")));
    EXPECT_FALSE(s.contains(addr("::ffff:1.2.3.4")));
}

TEST(CidrSet, Ipv4Network) {
    const auto s = make({"10.0.0.0/8"});
    EXPECT_FALSE(s.empty());
    EXPECT_TRUE(s.contains(addr("10.0.0.0")));
    EXPECT_TRUE(s.contains(addr("10.255.255.255")));
    EXPECT_TRUE(s.contains(addr("10.1.2.3")));
    EXPECT_FALSE(s.contains(addr("9.255.255.255")));
    EXPECT_FALSE(s.contains(addr("11.0.0.0")));
}

TEST(CidrSet, HostRoutesAndBareAddresses) {
    const auto s = make({"192.0.2.7/32", "198.51.100.9", "2001:db8::1/128", "2001:db8::9"});
    EXPECT_TRUE(s.contains(addr("192.0.2.7")));
    EXPECT_FALSE(s.contains(addr("192.0.2.6")));
    EXPECT_FALSE(s.contains(addr("192.0.2.8")));
    EXPECT_TRUE(s.contains(addr("198.51.100.9")));
    EXPECT_FALSE(s.contains(addr("198.51.100.10")));
    EXPECT_TRUE(s.contains(addr("2001:db8::1")));
    EXPECT_FALSE(s.contains(addr("2001:db8::2")));
    EXPECT_FALSE(s.contains(addr("2001:db8::")));
    EXPECT_TRUE(s.contains(addr("2001:db8::9")));
}

TEST(CidrSet, Ipv4SlashZeroHoldsEveryIpv4AndV4MappedButNoIpv6) {
    const auto s = make({"0.0.0.0/0"});
    EXPECT_TRUE(s.contains(addr("0.0.0.0")));
    EXPECT_TRUE(s.contains(addr("255.255.255.255")));
    EXPECT_TRUE(s.contains(addr("::ffff:8.8.8.8")));
    EXPECT_FALSE(s.contains(addr("::1")));
    EXPECT_FALSE(s.contains(addr("2001:db8::1")));
}

// The families are separate: ::/0 means "all of IPv6" and must not lock out IPv4 clients
// (nor v4-mapped ones, which are IPv4 clients on a dual-stack socket).
TEST(CidrSet, Ipv6SlashZeroHoldsEveryIpv6ButNoIpv4) {
    const auto s = make({"::/0"});
    EXPECT_TRUE(s.contains(addr("::")));
    EXPECT_TRUE(s.contains(addr("::1")));
    EXPECT_TRUE(s.contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_TRUE(s.contains(addr("2001:db8::1")));
    EXPECT_FALSE(s.contains(addr("1.2.3.4")));
    EXPECT_FALSE(s.contains(addr("::ffff:1.2.3.4")));
}

TEST(CidrSet, Ipv6Network) {
    const auto s = make({"2001:db8::/32"});
    EXPECT_TRUE(s.contains(addr("2001:db8::")));
    EXPECT_TRUE(s.contains(addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(s.contains(addr("2001:db9::")));
    EXPECT_FALSE(s.contains(addr("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
}

TEST(CidrSet, TopOfAddressSpace) {
    const auto s = make({"255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"});
    EXPECT_TRUE(s.contains(addr("255.255.255.255")));
    EXPECT_FALSE(s.contains(addr("255.255.255.254")));
    EXPECT_TRUE(s.contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(s.contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));
}

TEST(CidrSet, V4MappedAddressesLookUpAsIpv4) {
    const auto s = make({"127.0.0.1/32", "10.0.0.0/8"});
    EXPECT_TRUE(s.contains(addr("::ffff:127.0.0.1")));
    EXPECT_TRUE(s.contains(addr("::ffff:10.20.30.40")));
    EXPECT_FALSE(s.contains(addr("::ffff:127.0.0.2")));
    // IPv4-compatible (::a.b.c.d, deprecated) is not v4-mapped: plain IPv6.
    EXPECT_FALSE(s.contains(addr("::127.0.0.1")));
}

TEST(CidrSet, V4MappedCidrsAreStoredAsIpv4) {
    const auto s = make({"::ffff:10.0.0.0/104", "::ffff:192.0.2.1", "::ffff:198.51.100.0/120"});
    EXPECT_TRUE(s.contains(addr("10.1.2.3")));
    EXPECT_TRUE(s.contains(addr("::ffff:10.1.2.3")));
    EXPECT_FALSE(s.contains(addr("11.0.0.0")));
    EXPECT_TRUE(s.contains(addr("192.0.2.1")));
    EXPECT_FALSE(s.contains(addr("192.0.2.2")));
    EXPECT_TRUE(s.contains(addr("198.51.100.255")));
    EXPECT_FALSE(s.contains(addr("198.51.101.0")));
    // Nothing of it landed in the IPv6 table.
    EXPECT_FALSE(s.contains(addr("::a00:0")));
}

TEST(CidrSet, WholeV4MappedBlockIsAllOfIpv4) {
    const auto s = make({"::ffff:0:0/96"});
    EXPECT_TRUE(s.contains(addr("0.0.0.0")));
    EXPECT_TRUE(s.contains(addr("255.255.255.255")));
    EXPECT_FALSE(s.contains(addr("::1")));
}

TEST(CidrSet, AdjacentRangesMerge) {
    const auto s =
        make({"10.0.1.0/24", "10.0.0.0/24", "10.0.2.0/23", "2001:db8:0:1::/64", "2001:db8::/64"});
    EXPECT_TRUE(s.contains(addr("10.0.0.0")));
    EXPECT_TRUE(s.contains(addr("10.0.0.255")));
    EXPECT_TRUE(s.contains(addr("10.0.1.0")));
    EXPECT_TRUE(s.contains(addr("10.0.3.255")));
    EXPECT_FALSE(s.contains(addr("10.0.4.0")));
    EXPECT_FALSE(s.contains(addr("9.255.255.255")));
    EXPECT_TRUE(s.contains(addr("2001:db8::ffff")));
    EXPECT_TRUE(s.contains(addr("2001:db8:0:1:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(s.contains(addr("2001:db8:0:2::")));
}

TEST(CidrSet, OverlappingAndDuplicateRanges) {
    const auto s = make({"10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "10.255.255.255/32",
                         "0.0.0.0/0", "192.168.0.0/16"});
    EXPECT_TRUE(s.contains(addr("1.1.1.1")));
    EXPECT_TRUE(s.contains(addr("255.255.255.255")));
    const auto t = make({"10.1.0.0/16", "10.0.0.0/8", "10.2.3.4"});
    EXPECT_TRUE(t.contains(addr("10.1.255.255")));
    EXPECT_TRUE(t.contains(addr("10.200.0.1")));
    EXPECT_FALSE(t.contains(addr("11.0.0.0")));
}

TEST(CidrSet, GapsBetweenRangesStayOut) {
    const auto s = make({"10.0.0.0/24", "10.0.2.0/24", "10.0.4.0/24"});
    EXPECT_TRUE(s.contains(addr("10.0.2.128")));
    EXPECT_FALSE(s.contains(addr("10.0.1.0")));
    EXPECT_FALSE(s.contains(addr("10.0.3.255")));
    EXPECT_FALSE(s.contains(addr("10.0.5.0")));
}

TEST(CidrSet, ManyRangesAgreeWithLinearScan) {
    cidr_set s;
    std::string error;
    for (unsigned i = 0; i < 2000; i += 3) {
        const std::string c =
            "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24";
        ASSERT_TRUE(s.add(c, error)) << c << ": " << error;
    }
    s.finalize();
    for (unsigned i = 0; i < 2000; ++i) {
        const auto a = ip::make_address_v4((10u << 24) | (i << 8) | 77u);
        EXPECT_EQ(s.contains(ip::address(a)), i % 3 == 0) << a.to_string();
    }
}

TEST(CidrSet, HostBitsSetIsAnError) {
    EXPECT_EQ(add_error("10.0.0.1/8"), "host bits set (the network is 10.0.0.0/8)");
    EXPECT_EQ(add_error("2001:db8::1/32"), "host bits set (the network is 2001:db8::/32)");
    EXPECT_EQ(add_error("1.0.0.0/0"), "host bits set (the network is 0.0.0.0/0)");
    // The ffff of a v4-mapped address lies below any prefix shorter than 96.
    EXPECT_NE(add_error("::ffff:10.0.0.0/80").find("host bits set"), std::string::npos);
    EXPECT_NE(add_error("::ffff:10.0.0.1/104").find("host bits set"), std::string::npos);
}

TEST(CidrSet, MalformedInputIsAnError) {
    for (const char* bad :
         {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8",
          "10.0.0.0/ 8", "10.0.0.0/8/8", "10.0.0.0/0x8", "10.0.0/8", "10.0.0.256", "010.0.0.0/8",
          " 10.0.0.0/8", "example.com", "fe80::1%eth0/128", "10.0.0.0/0008"}) {
        cidr_set s;
        std::string error;
        EXPECT_FALSE(s.add(bad, error)) << "'" << bad << "'";
        EXPECT_FALSE(error.empty()) << "'" << bad << "'";
    }
    EXPECT_EQ(add_error("10.0.0.0/33"), "prefix length must be a number from 0 to 32");
    EXPECT_EQ(add_error("::/129"), "prefix length must be a number from 0 to 128");
    EXPECT_EQ(add_error("nonsense"), "not an IP address");
    EXPECT_EQ(add_error("fe80::1%eth0"), "zone index not allowed in a CIDR");
}

TEST(CidrSet, FailedAddLeavesTheSetUnchanged) {
    cidr_set s;
    std::string error;
    EXPECT_FALSE(s.add("10.0.0.1/8", error));
    s.finalize();
    EXPECT_TRUE(s.empty());
}

}  // namespace
