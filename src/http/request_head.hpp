#pragma once
// Phase "read_head" without the I/O: the scanner found a complete head; parse it with
// Beast, validate its meaning, normalize its path. The session owns the parser because
// the same parser goes on to decode the body.
#include <string>
#include <string_view>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/head_scanner.hpp"
#include "http/head_validator.hpp"
#include "http/path_normalizer.hpp"

namespace mailgate::http {

using request_parser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

struct head_outcome {
    int http_status = 0;  // 0 = accepted; else 400 (or 417) and close
    std::string_view reason;
    explicit operator bool() const { return http_status == 0; }
};

// `head_bytes` is exactly the head the scanner reported complete (through CRLFCRLF).
// On success the parser has consumed all of it and is ready to decode the body;
// `info` views point into the parser's header, `normalized_path` is filled in.
head_outcome parse_request_head(std::string_view head_bytes, const head_limits& limits,
                                request_parser& parser, request_info& info,
                                std::string& normalized_path);

}  // namespace mailgate::http
