#include "http/request_head.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace mailgate::http {

namespace {

head_outcome reject(std::string_view reason, int status = 400) { return {status, reason}; }

// Static text for the log; ec.message() would allocate on the request path.
std::string_view beast_reason(const boost::beast::error_code& ec) {
    namespace e = boost::beast::http;
    if (ec == e::error::bad_method) return "bad method";
    if (ec == e::error::bad_target) return "bad target";
    if (ec == e::error::bad_version) return "bad version";
    if (ec == e::error::bad_field) return "bad field name";
    if (ec == e::error::bad_value) return "bad field value";
    if (ec == e::error::bad_line_ending) return "bad line ending";
    if (ec == e::error::bad_content_length) return "bad content-length";
    if (ec == e::error::multiple_content_length) return "multiple content-length";
    if (ec == e::error::bad_transfer_encoding) return "bad transfer-encoding";
    if (ec == e::error::header_limit) return "header limit";
    return "malformed head";
}

}  // namespace

head_outcome parse_request_head(std::string_view head_bytes, const head_limits& limits,
                                request_parser& parser, request_info& info,
                                std::string& normalized_path) {
    info = request_info{};
    normalized_path.clear();

    // Limits may only be set before the first byte (Beast: undefined behaviour after).
    if (parser.got_some()) return reject("parser already used");

    // eager(false): stop after the header even if body bytes follow, so the session
    // decides what happens to the body (413, 100-continue, policy) before any is read.
    parser.eager(false);
    // The scanner enforces the real limits per part; this only stops Beast from
    // parsing something the scanner should have refused.
    const std::uint64_t safety_net = static_cast<std::uint64_t>(limits.request_line) +
                                     static_cast<std::uint64_t>(limits.request_headers) + 1024;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::uint64_t>(safety_net, std::numeric_limits<std::uint32_t>::max())));
    // The session counts body bytes against the location's limit itself, because Beast
    // checks a Content-Length body against body_limit only once.
    parser.body_limit(boost::none);

    boost::beast::error_code ec;
    const std::size_t used =
        parser.put(boost::asio::buffer(head_bytes.data(), head_bytes.size()), ec);
    // need_more (returned with used == 0) cannot happen for a head the scanner saw end in
    // CRLFCRLF unless the two disagree about where it ends, which is itself a reason to
    // refuse: the request would be framed differently by the next parser in line.
    if (ec == boost::beast::http::error::need_more) return reject("head incomplete for parser");
    if (ec) return reject(beast_reason(ec));
    if (!parser.is_header_done()) return reject("head incomplete for parser");
    if (used != head_bytes.size()) return reject("head length mismatch");

    const validation_result valid = validate_request_head(parser.get(), info);
    if (!valid) return {valid.http_status, valid.reason};

    if (info.path == "*") {
        // The validator only lets '*' through for OPTIONS.
        normalized_path = "*";
        return {};
    }
    normalize_result norm = normalize_path(info.path);
    if (!norm.ok) return reject(norm.reason);
    normalized_path = std::move(norm.path);
    return {};
}

}  // namespace mailgate::http
