// PROXY protocol v1 and v2 parsing: valid headers whole and split at every byte, every
// malformed shape, size limits and mode mismatches.
#include "net/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mailgate::net {
namespace {

namespace asio = boost::asio;
using status = proxy_parse_status;
using mode = proxy_protocol_mode;

// What a TLS client sends first; it must never be taken as part of the header.
const std::string client_hello_start("\x16\x03\x01\x02\x00", 5);

const std::string v2_sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(std::size_t v) {
    return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string tlv(unsigned char type, const std::string& value) {
    return std::string(1, static_cast<char>(type)) + be16(value.size()) + value;
}

std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& payload) {
    return v2_sig + static_cast<char>(ver_cmd) + static_cast<char>(fam) + be16(payload.size()) +
           payload;
}

std::string v2_tcp4_payload() {
    // 192.0.2.10:51000 -> 198.51.100.1:443
    return std::string("\xc0\x00\x02\x0a\xc6\x33\x64\x01", 8) + be16(51000) + be16(443);
}

std::string v2_tcp6_payload() {
    // [2001:db8::1]:40000 -> [2001:db8::2]:443
    std::string src(16, '\0'), dst(16, '\0');
    src[0] = dst[0] = 0x20;
    src[1] = dst[1] = 0x01;
    src[2] = dst[2] = 0x0d;
    src[3] = dst[3] = static_cast<char>(0xb8);
    src[15] = 1;
    dst[15] = 2;
    return src + dst + be16(40000) + be16(443);
}

asio::ip::tcp::endpoint ep(const char* ip, std::uint16_t port) {
    return {asio::ip::make_address(ip), port};
}

// Every strict prefix is incomplete, with a `need` that makes progress and never reaches past
// the header; the whole header (with the client's bytes after it) is done.
void expect_valid_split(const std::string& header, mode m) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        const auto r = parse_proxy_header(std::string_view(header).substr(0, n), m);
        ASSERT_EQ(r.status, status::incomplete) << "prefix " << n << ": " << r.reason;
        EXPECT_GT(r.need, n) << "prefix " << n;
        EXPECT_LE(r.need, header.size()) << "prefix " << n;
    }
    const auto whole = parse_proxy_header(header, m);
    ASSERT_EQ(whole.status, status::done) << whole.reason;
    EXPECT_EQ(whole.consumed, header.size());
    const auto more = parse_proxy_header(header + client_hello_start, m);
    ASSERT_EQ(more.status, status::done);
    EXPECT_EQ(more.consumed, header.size());
}

// Never done at any prefix, and invalid once whole.
void expect_invalid(const std::string& bytes, mode m) {
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        const auto r = parse_proxy_header(std::string_view(bytes).substr(0, n), m);
        ASSERT_NE(r.status, status::done) << "prefix " << n;
    }
    const auto r = parse_proxy_header(bytes, m);
    EXPECT_EQ(r.status, status::invalid) << "accepted: " << bytes;
    EXPECT_FALSE(r.reason.empty());
    EXPECT_EQ(r.consumed, 0u);
}

// --- v1 ------------------------------------------------------------------------------------

TEST(ProxyV1, Tcp4) {
    const std::string h = "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n";
    const auto r = parse_proxy_header(h + client_hello_start, mode::v1);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_EQ(r.consumed, h.size());
    EXPECT_FALSE(r.header.local);
    EXPECT_EQ(r.header.source, ep("192.0.2.10", 51000));
    EXPECT_EQ(r.header.destination, ep("198.51.100.1", 443));
    expect_valid_split(h, mode::v1);
    expect_valid_split(h, mode::any);
}

TEST(ProxyV1, Tcp6) {
    const std::string h = "PROXY TCP6 2001:db8::1 2001:DB8::2 0 65535\r\n";
    const auto r = parse_proxy_header(h, mode::v1);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_EQ(r.header.source, ep("2001:db8::1", 0));
    EXPECT_EQ(r.header.destination, ep("2001:db8::2", 65535));
    expect_valid_split(h, mode::v1);
    expect_valid_split(h, mode::any);
}

TEST(ProxyV1, Tcp6V4MappedIsStoredAsV4) {
    const auto r = parse_proxy_header("PROXY TCP6 ::ffff:192.0.2.7 ::1 1234 443\r\n", mode::v1);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_TRUE(r.header.source.address().is_v4());
    EXPECT_EQ(r.header.source, ep("192.0.2.7", 1234));
    EXPECT_EQ(r.header.destination, ep("::1", 443));
}

TEST(ProxyV1, Unknown) {
    for (const std::string h :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
          "PROXY UNKNOWN whatever follows is ignored\r\n"}) {
        const auto r = parse_proxy_header(h, mode::v1);
        ASSERT_EQ(r.status, status::done) << h;
        EXPECT_TRUE(r.header.local);
        EXPECT_EQ(r.consumed, h.size());
        expect_valid_split(h, mode::v1);
        expect_valid_split(h, mode::any);
    }
}

TEST(ProxyV1, LongestLinesAreAccepted) {
    // The longest TCP line, and the spec's worst case of exactly 107 bytes: UNKNOWN followed
    // by what a TCP6 line would carry.
    const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string tcp6 = "PROXY TCP6 " + full + " " + full + " 65535 65535\r\n";
    expect_valid_split(tcp6, mode::v1);
    const std::string unknown = "PROXY UNKNOWN " + full + " " + full + " 65535 65535\r\n";
    ASSERT_EQ(unknown.size(), proxy_v1_max_size);
    expect_valid_split(unknown, mode::v1);
    const auto r = parse_proxy_header(unknown, mode::v1);
    EXPECT_TRUE(r.header.local);
    const std::string filler = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
    ASSERT_EQ(filler.size(), proxy_v1_max_size);
    expect_valid_split(filler, mode::v1);
}

TEST(ProxyV1, NoCrlfWithin107Bytes) {
    const std::string too_long = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
    ASSERT_EQ(too_long.size(), proxy_v1_max_size + 1);
    expect_invalid(too_long, mode::v1);
    // Decided at 107 bytes even if the rest never comes.
    const auto r = parse_proxy_header(std::string_view(too_long).substr(0, 107), mode::v1);
    EXPECT_EQ(r.status, status::invalid);
    expect_invalid("PROXY TCP4 " + std::string(200, '1'), mode::v1);
}

TEST(ProxyV1, MalformedShapes) {
    const std::vector<std::string> bad = {
        // prefix and case
        "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXYTCP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY unknown\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "PROXY\r\n",
        // spacing
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
        "PROXY TCP4 192.0.2.1\t192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
        // line ends
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
        "PROXY UNKNOWN\n\r\n",
        // addresses
        "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1.5 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",
        "PROXY TCP4 0x7f.0.0.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 localhost 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 example.com 1 2\r\n",
        "PROXY TCP4 -192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP6 2001:db8::1%eth0 2001:db8::2 1 2\r\n",
        "PROXY TCP6 [2001:db8::1] 2001:db8::2 1 2\r\n",
        "PROXY TCP6 2001:db8:::1 2001:db8::2 1 2\r\n",
        "PROXY TCP6 2001:db8::10000 2001:db8::2 1 2\r\n",
        // family mismatch
        "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
        "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 2001:db8::2 1 2\r\n",
        "PROXY TCP6 2001:db8::1 192.0.2.2 1 2\r\n",
        // ports
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 0x2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 443a\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 000000000000443\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2  2\r\n",
    };
    for (const auto& b : bad) {
        SCOPED_TRACE(b);
        expect_invalid(b, mode::v1);
        expect_invalid(b, mode::any);
    }
}

TEST(ProxyV1, NulInsideLineIsInvalid) {
    using namespace std::string_literals;
    expect_invalid("PROXY TCP4 192.0.2.1\0 192.0.2.2 1 2\r\n"s, mode::v1);
}

TEST(ProxyV1, WrongFirstBytesAreRefusedAtOnce) {
    // A client that talks TLS or HTTP straight away is refused on its first byte.
    EXPECT_EQ(parse_proxy_header(client_hello_start.substr(0, 1), mode::v1).status,
              status::invalid);
    EXPECT_EQ(parse_proxy_header("G", mode::v1).status, status::invalid);
    EXPECT_EQ(parse_proxy_header("PROXX", mode::v1).status, status::invalid);
    EXPECT_EQ(parse_proxy_header("GET / HTTP/1.1\r\n\r\n", mode::any).status, status::invalid);
    EXPECT_EQ(parse_proxy_header(client_hello_start, mode::any).status, status::invalid);
}

// --- v2 ------------------------------------------------------------------------------------

TEST(ProxyV2, Tcp4) {
    const auto h = v2(0x21, 0x11, v2_tcp4_payload());
    const auto r = parse_proxy_header(h + client_hello_start, mode::v2);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_EQ(r.consumed, 28u);
    EXPECT_FALSE(r.header.local);
    EXPECT_EQ(r.header.source, ep("192.0.2.10", 51000));
    EXPECT_EQ(r.header.destination, ep("198.51.100.1", 443));
    expect_valid_split(h, mode::v2);
    expect_valid_split(h, mode::any);
}

TEST(ProxyV2, Tcp6) {
    const auto h = v2(0x21, 0x21, v2_tcp6_payload());
    const auto r = parse_proxy_header(h, mode::v2);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_EQ(r.consumed, 52u);
    EXPECT_EQ(r.header.source, ep("2001:db8::1", 40000));
    EXPECT_EQ(r.header.destination, ep("2001:db8::2", 443));
    expect_valid_split(h, mode::v2);
    expect_valid_split(h, mode::any);
}

TEST(ProxyV2, Tcp6V4MappedIsStoredAsV4) {
    std::string src(10, '\0');
    src += std::string("\xff\xff\xc0\x00\x02\x07", 6);
    const auto h = v2(0x21, 0x21, src + src + be16(1) + be16(2));
    const auto r = parse_proxy_header(h, mode::v2);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_TRUE(r.header.source.address().is_v4());
    EXPECT_EQ(r.header.source, ep("192.0.2.7", 1));
}

TEST(ProxyV2, WithTlvs) {
    // ALPN, authority, an AWS-style TLV, a NOOP with empty value, and CRC32C (not checked).
    const std::string tlvs = tlv(0x01, "h2") + tlv(0x02, "mail.example.com") +
                             tlv(0xEA, std::string("\x01vpce-0123456789abcdef", 22)) +
                             tlv(0x04, "") + tlv(0x03, std::string("\0\0\0\0", 4));
    for (const auto& [fam, payload] :
         {std::pair{0x11, v2_tcp4_payload()}, std::pair{0x21, v2_tcp6_payload()}}) {
        const auto h = v2(0x21, static_cast<unsigned char>(fam), payload + tlvs);
        const auto r = parse_proxy_header(h + client_hello_start, mode::v2);
        ASSERT_EQ(r.status, status::done) << r.reason;
        EXPECT_EQ(r.consumed, h.size());
        EXPECT_FALSE(r.header.local);
        EXPECT_EQ(r.header.destination.port(), 443);
        expect_valid_split(h, mode::v2);
        expect_valid_split(h, mode::any);
    }
}

TEST(ProxyV2, Local) {
    // Health checks: LOCAL with UNSPEC and no addresses, with TLVs, and with an address block
    // (ignored, family included, as the spec says).
    for (const auto& h :
         {v2(0x20, 0x00, ""), v2(0x20, 0x00, tlv(0x04, "pad")), v2(0x20, 0x11, v2_tcp4_payload()),
          v2(0x20, 0x21, "short"), v2(0x20, 0x31, std::string(216, 'u'))}) {
        const auto r = parse_proxy_header(h + client_hello_start, mode::v2);
        ASSERT_EQ(r.status, status::done) << r.reason;
        EXPECT_TRUE(r.header.local);
        EXPECT_EQ(r.consumed, h.size());
        expect_valid_split(h, mode::v2);
        expect_valid_split(h, mode::any);
    }
}

TEST(ProxyV2, ProxyWithUnspecIsLocal) {
    const auto h = v2(0x21, 0x00, "");
    const auto r = parse_proxy_header(h, mode::v2);
    ASSERT_EQ(r.status, status::done) << r.reason;
    EXPECT_TRUE(r.header.local);
    expect_valid_split(h, mode::any);
}

TEST(ProxyV2, BadSignature) {
    for (std::size_t i = 0; i < v2_sig.size(); ++i) {
        auto h = v2(0x21, 0x11, v2_tcp4_payload());
        h[i] = static_cast<char>(h[i] ^ 0x40);
        SCOPED_TRACE(i);
        expect_invalid(h, mode::v2);
        // Refused as soon as the wrong byte is in.
        EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, i + 1), mode::v2).status,
                  status::invalid);
        if (i > 0) {
            EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, i + 1), mode::any).status,
                      status::invalid);
        }
    }
}

TEST(ProxyV2, BadVersionOrCommand) {
    for (const unsigned char ver_cmd : {0x11, 0x31, 0xf1, 0x01, 0x22, 0x2f}) {
        const auto h = v2(ver_cmd, 0x11, v2_tcp4_payload());
        SCOPED_TRACE(static_cast<int>(ver_cmd));
        expect_invalid(h, mode::v2);
        EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, 13), mode::v2).status,
                  status::invalid);
    }
}

TEST(ProxyV2, UnsupportedFamilyOrProtocol) {
    // UDP over IPv4/IPv6, UNIX stream/datagram, unknown family, UNSPEC transport with INET.
    for (const unsigned char fam : {0x12, 0x22, 0x31, 0x32, 0x41, 0x10, 0x20, 0x13, 0x01}) {
        const auto h = v2(0x21, fam, std::string(216, '\0'));
        SCOPED_TRACE(static_cast<int>(fam));
        expect_invalid(h, mode::v2);
        EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, 14), mode::v2).status,
                  status::invalid);
    }
}

TEST(ProxyV2, AddressBlockTooShort) {
    expect_invalid(v2(0x21, 0x11, v2_tcp4_payload().substr(0, 11)), mode::v2);
    expect_invalid(v2(0x21, 0x21, v2_tcp6_payload().substr(0, 35)), mode::v2);
    expect_invalid(v2(0x21, 0x21, v2_tcp4_payload()), mode::v2);
    // Decided from the length field, before any address byte arrives.
    const auto h = v2(0x21, 0x21, v2_tcp4_payload());
    EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, 16), mode::v2).status,
              status::invalid);
}

TEST(ProxyV2, MalformedTlvs) {
    const auto p4 = v2_tcp4_payload();
    for (const auto& extra : {std::string("\x01", 1), std::string("\x01\x00", 2),
                              std::string("\x01\x00\x05"
                                          "abcd",
                                          7),
                              tlv(0x01, "h2") + std::string("\x04\x00", 2)}) {
        SCOPED_TRACE(extra.size());
        expect_invalid(v2(0x21, 0x11, p4 + extra), mode::v2);
    }
}

TEST(ProxyV2, LengthBound) {
    // Largest accepted: addresses plus one TLV filling the block.
    const auto p4 = v2_tcp4_payload();
    const auto max_tlv = tlv(0x04, std::string(proxy_v2_max_payload - p4.size() - 3, 'x'));
    const auto largest = v2(0x21, 0x11, p4 + max_tlv);
    ASSERT_EQ(largest.size(), proxy_v2_max_size);
    const auto r = parse_proxy_header(largest, mode::v2);
    EXPECT_EQ(r.status, status::done) << r.reason;

    // One byte more is refused as soon as the length field is in, without waiting for it.
    const auto oversize = v2(0x21, 0x11, p4 + max_tlv + std::string("\x04\x00\x00", 3));
    EXPECT_EQ(parse_proxy_header(std::string_view(oversize).substr(0, 16), mode::v2).status,
              status::invalid);
    const auto over_by_one = v2_sig + "\x21\x11" + be16(proxy_v2_max_payload + 1);
    EXPECT_EQ(parse_proxy_header(over_by_one, mode::v2).status, status::invalid);
    const auto huge = v2_sig + std::string("\x20\x00", 2) + be16(65535);
    EXPECT_EQ(parse_proxy_header(huge, mode::v2).status, status::invalid);
    EXPECT_EQ(parse_proxy_header(huge, mode::any).status, status::invalid);
}

TEST(ProxyV2, NeedIsExactOnceLengthIsKnown) {
    const auto h = v2(0x21, 0x21, v2_tcp6_payload() + tlv(0x01, "http/1.1"));
    for (std::size_t n = 16; n < h.size(); ++n) {
        const auto r = parse_proxy_header(std::string_view(h).substr(0, n), mode::v2);
        ASSERT_EQ(r.status, status::incomplete);
        EXPECT_EQ(r.need, h.size());
    }
    for (std::size_t n = 0; n < 16; ++n)
        EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, n), mode::v2).need, 16u);
}

// --- modes ---------------------------------------------------------------------------------

TEST(ProxyMode, MismatchIsInvalid) {
    const std::string v1h = "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n";
    const auto v2h = v2(0x21, 0x11, v2_tcp4_payload());
    expect_invalid(v1h, mode::v2);
    expect_invalid(v2h, mode::v1);
    // On the first byte.
    EXPECT_EQ(parse_proxy_header("P", mode::v2).status, status::invalid);
    EXPECT_EQ(parse_proxy_header("\r", mode::v1).status, status::invalid);
}

TEST(ProxyMode, AnyNeedsOneByteToDecide) {
    const auto r = parse_proxy_header("", mode::any);
    EXPECT_EQ(r.status, status::incomplete);
    EXPECT_EQ(r.need, 15u);  // "PROXY UNKNOWN\r\n", the shortest header of either version
    EXPECT_EQ(parse_proxy_header("P", mode::any).status, status::incomplete);
    EXPECT_EQ(parse_proxy_header("\r", mode::any).status, status::incomplete);
    EXPECT_EQ(parse_proxy_header("\n", mode::any).status, status::invalid);
    EXPECT_EQ(parse_proxy_header(std::string_view("\0", 1), mode::any).status, status::invalid);
}

TEST(ProxyMode, OffConsumesNothing) {
    for (const std::string& bytes : {std::string(), client_hello_start,
                                     std::string("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")}) {
        const auto r = parse_proxy_header(bytes, mode::off);
        EXPECT_EQ(r.status, status::done);
        EXPECT_EQ(r.consumed, 0u);
        EXPECT_TRUE(r.header.local);
    }
}

}  // namespace
}  // namespace mailgate::net
