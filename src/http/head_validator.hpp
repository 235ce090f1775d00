#pragma once
// Checks on the parsed meaning of a request head (framing, Host, target) that Beast 1.81
// does not make. Any failure is a 400 and the connection closes; never forwarded.
#include <cstdint>
#include <string_view>

#include <boost/beast/http/message.hpp>

namespace mailgate::http {

enum class body_framing { none, content_length, chunked };

struct request_info {
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;  // when framing == content_length
    bool expect_continue = false;      // Expect: 100-continue (case-insensitive)
    bool keep_alive = true;            // HTTP/1.1 default; Connection: close / HTTP/1.0 rules
    std::string_view host;             // the single Host value (view into the header)
    std::string_view path;             // target up to '?' (view)
    std::string_view query;            // after '?', without it; empty if none (view)
};

// Whether a body follows the head (a Content-Length of 0 is no body).
inline bool has_body(const request_info& i) {
    return i.framing == body_framing::chunked ||
           (i.framing == body_framing::content_length && i.content_length > 0);
}

struct validation_result {
    int http_status = 0;  // 0 = valid; else 400 (or 417 for an unsupported Expect)
    std::string_view reason;
    explicit operator bool() const { return http_status == 0; }
};

validation_result validate_request_head(const boost::beast::http::request_header<>& head,
                                        request_info& out);

}  // namespace mailgate::http
