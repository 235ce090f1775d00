#include "net/proxy_protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "net/forwarded_for.hpp"

namespace mailgate::net {
namespace asio = boost::asio;

namespace {

using status = proxy_parse_status;

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t v2_fixed_size = 16;
// "PROXY UNKNOWN\r\n": no v1 header is shorter, and every v2 header is longer.
constexpr std::size_t v1_min_size = 15;

constexpr unsigned char v2_cmd_local = 0x0;
constexpr unsigned char v2_cmd_proxy = 0x1;
constexpr unsigned char v2_unspec = 0x00;
constexpr unsigned char v2_tcp4 = 0x11;
constexpr unsigned char v2_tcp6 = 0x21;
constexpr std::size_t v2_tcp4_size = 4 + 4 + 2 + 2;
constexpr std::size_t v2_tcp6_size = 16 + 16 + 2 + 2;
constexpr std::size_t v2_tlv_header_size = 3;

proxy_parse_result invalid(std::string_view reason) {
    proxy_parse_result r;
    r.status = status::invalid;
    r.reason = reason;
    return r;
}

proxy_parse_result incomplete(std::size_t need) {
    proxy_parse_result r;
    r.status = status::incomplete;
    r.need = need;
    return r;
}

proxy_parse_result local(std::size_t consumed) {
    proxy_parse_result r;
    r.status = status::done;
    r.consumed = consumed;
    r.header.local = true;
    return r;
}

// Prefix of `expected` as far as `bytes` goes, so a wrong first byte is refused at once.
bool matches_so_far(std::string_view bytes, std::string_view expected) {
    const auto n = std::min(bytes.size(), expected.size());
    return bytes.substr(0, n) == expected.substr(0, n);
}

// Splits off the text up to the next single space; false when there is none or the field is
// empty (two spaces in a row, or a leading space).
bool next_field(std::string_view& rest, std::string_view& field) {
    const auto space = rest.find(' ');
    if (space == std::string_view::npos || space == 0) return false;
    field = rest.substr(0, space);
    rest.remove_prefix(space + 1);
    return true;
}

std::optional<asio::ip::address> v1_address(std::string_view text, bool v6) {
    if (v6) {
        const auto a = parse_ipv6_literal(text);
        if (!a) return std::nullopt;
        return canonical_address(asio::ip::address(*a));
    }
    const auto a = parse_ipv4_literal(text);
    if (!a) return std::nullopt;
    return asio::ip::address(*a);
}

proxy_parse_result parse_v1(std::string_view bytes) {
    if (!matches_so_far(bytes, v1_prefix)) return invalid("not a PROXY v1 header");

    // Find CRLF within the size limit; a CR or LF anywhere else can never become valid.
    const auto window = bytes.substr(0, proxy_v1_max_size);
    std::size_t cr = std::string_view::npos;
    for (std::size_t i = 0; i < window.size(); ++i) {
        if (window[i] == '\n') return invalid("bare LF in PROXY v1 header");
        if (window[i] == '\r') {
            if (i + 1 == window.size()) break;  // the LF may still come, or be one too many
            if (window[i + 1] != '\n') return invalid("bare CR in PROXY v1 header");
            cr = i;
            break;
        }
    }
    if (cr == std::string_view::npos) {
        if (bytes.size() >= proxy_v1_max_size) return invalid("PROXY v1 header too long");
        return incomplete(std::max(bytes.size() + 1, v1_min_size));
    }
    const std::size_t consumed = cr + 2;
    std::string_view rest = bytes.substr(v1_prefix.size(), cr - v1_prefix.size());

    // The spec says to ignore whatever follows UNKNOWN up to the CRLF.
    constexpr std::string_view unknown = "UNKNOWN";
    if (rest.starts_with(unknown) && (rest.size() == unknown.size() || rest[unknown.size()] == ' '))
        return local(consumed);

    std::string_view family, src, dst, sport;
    if (!next_field(rest, family)) return invalid("malformed PROXY v1 header");
    if (family != "TCP4" && family != "TCP6") return invalid("unknown PROXY v1 protocol");
    if (!next_field(rest, src) || !next_field(rest, dst) || !next_field(rest, sport))
        return invalid("malformed PROXY v1 header");
    const std::string_view dport = rest;  // no further space allowed: the port check catches it

    const bool v6 = family == "TCP6";
    const auto src_ip = v1_address(src, v6);
    const auto dst_ip = v1_address(dst, v6);
    if (!src_ip || !dst_ip) return invalid("bad address in PROXY v1 header");
    const auto src_port = parse_port_literal(sport);
    const auto dst_port = parse_port_literal(dport);
    if (!src_port || !dst_port) return invalid("bad port in PROXY v1 header");

    proxy_parse_result r;
    r.status = status::done;
    r.consumed = consumed;
    r.header.source = {*src_ip, *src_port};
    r.header.destination = {*dst_ip, *dst_port};
    return r;
}

std::uint16_t load_be16(const char* p) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                                      static_cast<unsigned char>(p[1]));
}

asio::ip::address v2_address(const char* p, bool v6) {
    if (v6) {
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), p, b.size());
        return canonical_address(asio::ip::address(asio::ip::address_v6(b)));
    }
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), p, b.size());
    return asio::ip::address_v4(b);
}

proxy_parse_result parse_v2(std::string_view bytes) {
    if (!matches_so_far(bytes, v2_signature)) return invalid("not a PROXY v2 header");

    // Each fixed byte is judged as soon as it arrives.
    if (bytes.size() > 12) {
        const auto ver_cmd = static_cast<unsigned char>(bytes[12]);
        if ((ver_cmd >> 4) != 2) return invalid("unsupported PROXY v2 version");
        if ((ver_cmd & 0x0f) > v2_cmd_proxy) return invalid("unknown PROXY v2 command");
    }
    const bool is_local = bytes.size() > 12 && (bytes[12] & 0x0f) == v2_cmd_local;
    const auto fam = bytes.size() > 13 ? static_cast<unsigned char>(bytes[13]) : v2_unspec;
    // LOCAL: the spec has the family ignored along with the address block.
    if (bytes.size() > 13 && !is_local && fam != v2_unspec && fam != v2_tcp4 && fam != v2_tcp6)
        return invalid("unsupported PROXY v2 family or protocol");
    if (bytes.size() < v2_fixed_size) return incomplete(v2_fixed_size);

    const std::size_t len = load_be16(bytes.data() + 14);
    if (len > proxy_v2_max_payload) return invalid("PROXY v2 header too long");
    const bool has_addresses = !is_local && fam != v2_unspec;
    const std::size_t address_size = fam == v2_tcp6 ? v2_tcp6_size : v2_tcp4_size;
    if (has_addresses && len < address_size) return invalid("PROXY v2 address block too short");
    const std::size_t total = v2_fixed_size + len;
    if (bytes.size() < total) return incomplete(total);
    if (!has_addresses) return local(total);

    // TLVs carry nothing we use, but a block that does not parse is not from a sane sender.
    std::string_view tlvs = bytes.substr(v2_fixed_size + address_size, len - address_size);
    while (!tlvs.empty()) {
        if (tlvs.size() < v2_tlv_header_size) return invalid("truncated PROXY v2 TLV");
        const std::size_t value_size = load_be16(tlvs.data() + 1);
        if (tlvs.size() - v2_tlv_header_size < value_size) return invalid("truncated PROXY v2 TLV");
        tlvs.remove_prefix(v2_tlv_header_size + value_size);
    }

    const char* p = bytes.data() + v2_fixed_size;
    const bool v6 = fam == v2_tcp6;
    const std::size_t ip_size = v6 ? 16 : 4;
    proxy_parse_result r;
    r.status = status::done;
    r.consumed = total;
    r.header.source = {v2_address(p, v6), load_be16(p + 2 * ip_size)};
    r.header.destination = {v2_address(p + ip_size, v6), load_be16(p + 2 * ip_size + 2)};
    return r;
}

}  // namespace

proxy_parse_result parse_proxy_header(std::string_view bytes, proxy_protocol_mode mode) {
    switch (mode) {
        case proxy_protocol_mode::off:
            return local(0);
        case proxy_protocol_mode::v1:
            return parse_v1(bytes);
        case proxy_protocol_mode::v2:
            return parse_v2(bytes);
        case proxy_protocol_mode::any:
            if (bytes.empty()) return incomplete(v1_min_size);
            if (bytes.front() == v1_prefix.front()) return parse_v1(bytes);
            if (bytes.front() == v2_signature.front()) return parse_v2(bytes);
            return invalid("no PROXY protocol header");
    }
    return invalid("unknown PROXY protocol mode");
}

}  // namespace mailgate::net
