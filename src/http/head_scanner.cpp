#include "http/head_scanner.hpp"

#include "http/ascii.hpp"

namespace mailgate::http {

namespace {

// basic_fields stores name and value lengths as uint16_t and throws std::length_error past
// that. The default limits never get near it; this keeps a generous configured
// request_headers from turning a long field into an exception inside Beast.
constexpr std::size_t max_field_line = 65000;

constexpr bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

scan_result head_scanner::reject(int http_status, std::string_view reason) {
    result_.status = scan_status::reject;
    result_.http_status = http_status;
    result_.reason = reason;
    return result_;
}

// Every decision depends only on bytes at or before the one being looked at (a CR waits for
// the byte after it), and bytes are visited strictly in order. That is what makes the answer
// independent of how the head was split across reads, and lets a limit fire the moment it
// is passed instead of when the line ends.
scan_result head_scanner::scan(std::string_view buffered) {
    if (result_.status != scan_status::incomplete) return result_;
    // The contract is "the whole buffered prefix every time"; a shorter buffer means the
    // caller lost bytes we already vouched for, so nothing we remember is trustworthy.
    if (buffered.size() < pos_) return reject(400, "scanner buffer shrank");

    const std::size_t n = buffered.size();
    while (pos_ < n) {
        const unsigned char c = ascii::byte(buffered[pos_]);

        if (in_request_line_) {
            if (pos_ == line_start_ && (c == '\r' || c == '\n')) {
                // RFC 9112 2.2 lets servers skip these; a proxy in front of IIS must not
                // guess where a request starts.
                return reject(400, "empty line before request line");
            }
            if (c == '\r') {
                if (pos_ + 1 == n) break;  // the LF may still be on its way
                if (buffered[pos_ + 1] != '\n') return reject(400, "bare CR");
                pos_ += 2;
                line_start_ = pos_;
                block_start_ = pos_;
                in_request_line_ = false;
                continue;
            }
            if (c == '\n') return reject(400, "bare LF");
            if (pos_ - line_start_ >= limits_.request_line) {
                return reject(414, "request line too long");
            }
            // HTAB is legal in field values but never in the request line, where Beast
            // would treat it as part of the target.
            if (is_ctl(c)) return reject(400, "control character in request line");
            ++pos_;
            continue;
        }

        if (pos_ == line_start_) {
            if (c == '\r') {
                if (pos_ + 1 == n) break;
                if (buffered[pos_ + 1] != '\n') return reject(400, "bare CR");
                pos_ += 2;
                result_.status = scan_status::complete;
                result_.head_size = pos_;
                return result_;
            }
            if (c == '\n') return reject(400, "bare LF");
            // Beast would unfold this into the previous field (Content-Length and
            // Transfer-Encoding included) while another hop might not.
            if (c == ' ' || c == '\t') return reject(400, "obs-fold or whitespace line");
            if (fields_ >= limits_.header_count) return reject(431, "too many header fields");
            ++fields_;
            in_name_ = true;
        }

        // The field block counts every field line with its CRLF, not the final empty line.
        if (pos_ - block_start_ >= limits_.request_headers) {
            return reject(431, "header fields too large");
        }
        if (pos_ - line_start_ >= max_field_line) return reject(431, "header field too large");

        if (c == '\r') {
            if (pos_ + 1 == n) break;
            if (buffered[pos_ + 1] != '\n') return reject(400, "bare CR");
            if (in_name_) return reject(400, "field line without colon");
            if (pos_ + 1 - block_start_ >= limits_.request_headers) {
                return reject(431, "header fields too large");
            }
            pos_ += 2;
            line_start_ = pos_;
            continue;
        }
        if (c == '\n') return reject(400, "bare LF");

        if (in_name_) {
            if (c == ':') {
                if (pos_ == line_start_) return reject(400, "empty field name");
                in_name_ = false;
            } else if (c == ' ' || c == '\t') {
                // "Host : x" is one field to some parsers and garbage to others.
                return reject(400, "whitespace before colon");
            } else if (!ascii::is_tchar(static_cast<char>(c))) {
                return reject(400, "invalid character in field name");
            }
        } else if (c != '\t' && is_ctl(c)) {
            // obs-text (0x80-0xFF) stays allowed in values: real clients send it.
            return reject(400, "control character in field value");
        }
        ++pos_;
    }
    return result_;
}

}  // namespace mailgate::http
