#pragma once
// Raw-byte pre-validation of an HTTP/1.1 request head, before Beast parses it.
// Beast 1.81 is lenient where a proxy must not be (ANCHORS-CODE.md section 1); this scanner
// is the first gate: it finds the end of the head and rejects hostile bytes and sizes,
// counting sizes itself because Beast's header_limit depends on how bytes arrive.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mailgate::http {

struct head_limits {
    std::size_t request_line = 8 * 1024;  // bytes of the request line, without CRLF -> 414
    // Field block = every field line with its CRLF, not the final empty line -> 431.
    std::size_t request_headers = 16 * 1024;
    std::size_t header_count = 100;  // number of fields -> 431
};

enum class scan_status {
    incomplete,  // need more bytes; nothing wrong so far
    complete,    // head_size bytes form a head that passed the raw checks
    reject,      // answer `status` (400/414/431) and close
};

struct scan_result {
    scan_status status = scan_status::incomplete;
    std::size_t head_size = 0;  // complete: bytes up to and including the final CRLFCRLF
    int http_status = 0;        // reject: 400, 414 or 431
    std::string_view reason;    // reject: short static text for the log
};

// Incremental: feed the whole buffer each time more bytes arrive; the scanner remembers
// how far it got, so trickled bytes cost O(n) in total. One scanner per request head.
class head_scanner {
public:
    explicit head_scanner(const head_limits& limits) : limits_(limits) {}
    scan_result scan(std::string_view buffered);

private:
    scan_result reject(int http_status, std::string_view reason);

    head_limits limits_;
    scan_result result_;           // sticky once complete or reject
    std::size_t pos_ = 0;          // next byte to look at
    std::size_t line_start_ = 0;   // start of the current line
    std::size_t block_start_ = 0;  // start of the field block (after the request line)
    std::size_t fields_ = 0;       // field lines started so far
    bool in_request_line_ = true;
    bool in_name_ = false;  // inside a field name, before its ':'
};

}  // namespace mailgate::http
