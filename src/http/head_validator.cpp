#include "http/head_validator.hpp"

#include <limits>

#include "http/ascii.hpp"

namespace mailgate::http {

namespace bhttp = boost::beast::http;

namespace {

using fields_t = bhttp::fields;

validation_result fail(std::string_view reason, int status = 400) { return {status, reason}; }

// 1*DIGIT and nothing else. Beast 1.81 keeps "5, 5" as sent and would let a later hop pick
// either element, so a list is refused rather than collapsed.
bool parse_content_length(std::string_view v, std::uint64_t& out) {
    if (v.empty()) return false;
    std::uint64_t n = 0;
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    for (const char c : v) {
        if (!ascii::is_digit(c)) return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (n > (max - d) / 10) return false;
        n = n * 10 + d;
    }
    out = n;
    return true;
}

constexpr bool is_reg_name_char(char c) {
    // Unreserved only: DNS names and IPv4 literals need nothing else, and sub-delims or
    // pct-encoding in a Host are a parser-differential gift, not something clients send.
    return ascii::is_unreserved(c);
}

constexpr bool is_ipv6_char(char c) { return ascii::is_hex(c) || c == ':' || c == '.'; }

// uri-host [ ":" port ] with uri-host = reg-name / IPv4address / "[" IPv6address "]".
// No userinfo, no path, no zone id, no IPvFuture, no empty host or empty port.
bool valid_host(std::string_view h) {
    constexpr std::size_t max_host = 255;
    if (h.empty() || h.size() > max_host + 6) return false;
    std::size_t i = 0;
    if (h.front() == '[') {
        const std::size_t close = h.find(']');
        if (close == std::string_view::npos) return false;
        const std::string_view inner = h.substr(1, close - 1);
        if (inner.size() < 2 || inner.find(':') == std::string_view::npos) return false;
        for (const char c : inner) {
            if (!is_ipv6_char(c)) return false;
        }
        i = close + 1;
    } else {
        while (i < h.size() && h[i] != ':') {
            if (!is_reg_name_char(h[i])) return false;
            ++i;
        }
        if (i == 0 || i > max_host) return false;
    }
    if (i == h.size()) return true;
    if (h[i] != ':') return false;
    const std::string_view port = h.substr(i + 1);
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (const char c : port) {
        if (!ascii::is_digit(c)) return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535;
}

bool has_connection_token(const fields_t& f, std::string_view token) {
    bool found = false;
    // Not equal_range: in Beast 1.81 it spans every field between the first and last match.
    for (auto it = f.begin(); it != f.end() && !found; ++it) {
        if (it->name() != bhttp::field::connection) continue;
        ascii::for_each_list_token(it->value(), [&](std::string_view t) {
            found = ascii::iequals(t, token);
            return !found;
        });
    }
    return found;
}

validation_result check_framing(const bhttp::request_header<>& head, request_info& out) {
    const std::size_t te_count = head.count(bhttp::field::transfer_encoding);
    const std::size_t cl_count = head.count(bhttp::field::content_length);

    if (te_count > 0) {
        // RFC 9112 6.1: a 1.0 recipient cannot be assumed to understand chunked, and
        // Beast 1.81 would decode it anyway.
        if (head.version() < 11) return fail("transfer-encoding on HTTP/1.0");
        // Either order: Beast 1.81 only refuses CL-then-TE.
        if (cl_count > 0) return fail("content-length with transfer-encoding");
        if (te_count > 1) return fail("repeated transfer-encoding");
        // Beast 1.81 reads anything but a final "chunked" as "no body" and parses the body
        // as the next request. Codings other than chunked are never needed for requests.
        const std::string_view te = head[bhttp::field::transfer_encoding];
        if (!ascii::iequals(te, "chunked")) return fail("transfer-encoding not chunked");
        out.framing = body_framing::chunked;
        return {};
    }
    if (cl_count > 1) return fail("repeated content-length");
    if (cl_count == 1) {
        std::uint64_t n = 0;
        if (!parse_content_length(head[bhttp::field::content_length], n)) {
            return fail("malformed content-length");
        }
        out.framing = body_framing::content_length;
        out.content_length = n;
    }
    return {};
}

validation_result check_host(const bhttp::request_header<>& head, request_info& out) {
    const std::size_t count = head.count(bhttp::field::host);
    if (count > 1) return fail("repeated host");
    if (count == 0) {
        if (head.version() >= 11) return fail("missing host");
        return {};
    }
    const std::string_view host = head[bhttp::field::host];
    if (!valid_host(host)) return fail("malformed host");
    out.host = host;
    return {};
}

validation_result check_target(const bhttp::request_header<>& head, request_info& out) {
    const std::string_view target = head.target();
    // Beast lets 0x80-0xFF through, and backends disagree on what those bytes mean.
    for (const char c : target) {
        const unsigned char b = ascii::byte(c);
        if (b < 0x21 || b > 0x7e) return fail("invalid byte in target");
        if (c == '#') return fail("fragment in target");
    }
    if (target == "*") {
        if (head.method() != bhttp::verb::options) return fail("asterisk-form not OPTIONS");
        out.path = target;
        out.query = {};
        return {};
    }
    // Absolute-form would let the client choose a Host that differs from the Host field,
    // and authority-form is CONNECT: neither belongs in front of Exchange.
    if (target.empty() || target.front() != '/') return fail("target not origin-form");
    const std::size_t q = target.find('?');
    if (q == std::string_view::npos) {
        out.path = target;
        out.query = {};
    } else {
        out.path = target.substr(0, q);
        out.query = target.substr(q + 1);
    }
    return {};
}

validation_result check_expect(const bhttp::request_header<>& head, request_info& out) {
    const std::size_t count = head.count(bhttp::field::expect);
    if (count == 0) return {};
    if (count > 1) return fail("repeated expect", 417);
    if (!ascii::iequals(ascii::trim_ows(head[bhttp::field::expect]), "100-continue")) {
        return fail("unsupported expectation", 417);
    }
    // RFC 9110 10.1.1: a 100-continue from an HTTP/1.0 client must be ignored.
    out.expect_continue = head.version() >= 11;
    return {};
}

}  // namespace

validation_result validate_request_head(const bhttp::request_header<>& head, request_info& out) {
    out = request_info{};
    // Framing first: if it is ambiguous nothing else about the request can be trusted.
    if (auto r = check_framing(head, out); !r) return r;
    if (auto r = check_host(head, out); !r) return r;
    if (auto r = check_target(head, out); !r) return r;
    if (auto r = check_expect(head, out); !r) return r;

    if (head.version() >= 11) {
        out.keep_alive = !has_connection_token(head, "close");
    } else {
        out.keep_alive =
            has_connection_token(head, "keep-alive") && !has_connection_token(head, "close");
    }
    return {};
}

}  // namespace mailgate::http
