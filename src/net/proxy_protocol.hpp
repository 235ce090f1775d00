#pragma once
// PROXY protocol headers (haproxy doc/proxy-protocol.txt), v1 text and v2 binary, as an L4
// load balancer sends them before the client's first byte. Parse only: whether this peer may
// send a header at all (trusted_proxies) is decided by the caller before it calls this.
#include <cstddef>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace mailgate::net {

// Deliberately not config's enum: net must not depend on config. The caller maps one to the
// other.
enum class proxy_protocol_mode { off, v1, v2, any };

enum class proxy_parse_status {
    incomplete,  // a valid prefix so far: read more, then call again with all bytes
    done,        // the first `consumed` bytes are the header; the client's bytes follow
    invalid,     // not a header this mode accepts: close without sending anything
};

struct proxy_header {
    // The sender vouches for no client (v2 LOCAL, v2 PROXY with family UNSPEC, v1 UNKNOWN, or
    // mode off): the socket peer is the client. Load balancer health checks look like this.
    bool local = false;
    // Set when !local. IPv4-mapped IPv6 addresses are stored as IPv4, so that per-IP limits
    // and the log key a client the same way whichever family the balancer used.
    boost::asio::ip::tcp::endpoint source, destination;
};

struct proxy_parse_result {
    proxy_parse_status status = proxy_parse_status::incomplete;
    std::size_t consumed = 0;  // done: header bytes, v2 TLVs included; else 0
    // incomplete: call again once at least this many bytes are buffered. Never beyond the end
    // of the header, so a caller that reads exactly up to `need` never swallows TLS bytes;
    // exact for v2 once its fixed 16 bytes are in, a lower bound for v1 (peek to go faster).
    std::size_t need = 0;
    proxy_header header;
    std::string_view reason;  // invalid: short static text for the log
};

// v1 lines are at most 107 bytes with CRLF: the spec's worst case, "PROXY UNKNOWN" followed
// by what the longest TCP6 line carries.
inline constexpr std::size_t proxy_v1_max_size = 107;
// v2: 16 fixed bytes, then addresses (36 for IPv6) and TLVs. The spec allows 64 KiB; real
// senders (HAProxy with SSL and unique-id TLVs, AWS and Azure link ids) stay well under
// 1 KiB, and anything larger is refused before it is buffered.
inline constexpr std::size_t proxy_v2_max_payload = 1024;
inline constexpr std::size_t proxy_v2_max_size = 16 + proxy_v2_max_payload;
// Bytes a caller must be prepared to buffer before the header is decided either way.
inline constexpr std::size_t proxy_header_max_size = proxy_v2_max_size;

// Incremental and stateless: call with every byte received so far (before TLS starts). An
// invalid prefix is reported as soon as it is seen, so a client that speaks TLS or HTTP
// straight away is refused on its first byte.
//
// v1, strict: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (or TCP6), single spaces,
// upper case; IPv4 as four decimal octets without leading zeros, IPv6 in text form without
// zone id, each matching the family; ports decimal 0-65535 without sign or leading zero.
// "PROXY UNKNOWN" followed by CRLF or by a space and anything up to CRLF is `local`.
// Bare CR or LF, or no CRLF within 107 bytes: invalid.
//
// v2: the 12-byte signature, version 2, command LOCAL (any family; the address block is
// skipped, as the spec says) or PROXY with TCP over IPv4 or IPv6 (UNSPEC: `local`; UDP and
// UNIX sockets: invalid). Length at most proxy_v2_max_payload and at least the address
// block; the TLVs after it must be well formed (each type-length-value inside the block)
// but are otherwise ignored, CRC32C included.
//
// Modes: off -> done, consumed 0, local. v1 or v2 accept only their own version; any picks
// by the first byte ('P' for v1, CR for v2).
proxy_parse_result parse_proxy_header(std::string_view bytes, proxy_protocol_mode mode);

}  // namespace mailgate::net
