#include "http/head_scanner.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::http {
namespace {

scan_result scan_once(std::string_view bytes, head_limits limits = {}) {
    head_scanner s(limits);
    return s.scan(bytes);
}

TEST(HeadScanner, CompleteReportsHeadSizeAndIgnoresBody) {
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
    const scan_result r = scan_once(head + "abc");
    ASSERT_EQ(r.status, scan_status::complete);
    EXPECT_EQ(r.head_size, head.size());
}

TEST(HeadScanner, EmptyBufferIsIncomplete) {
    EXPECT_EQ(scan_once("").status, scan_status::incomplete);
}

TEST(HeadScanner, CrAtEndWaitsForNextByte) {
    head_scanner s({});
    EXPECT_EQ(s.scan("GET / HTTP/1.1\r").status, scan_status::incomplete);
    EXPECT_EQ(s.scan("GET / HTTP/1.1\r\nHost: a\r").status, scan_status::incomplete);
    EXPECT_EQ(s.scan("GET / HTTP/1.1\r\nHost: a\r\n\r").status, scan_status::incomplete);
    const scan_result r = s.scan("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(r.status, scan_status::complete);
    EXPECT_EQ(r.head_size, 27u);
}

TEST(HeadScanner, ResultIsStickyOnceDecided) {
    using namespace std::string_literals;
    head_scanner s({});
    const scan_result r = s.scan("GET / HTTP/1.1\r\nX: a\0"s);
    ASSERT_EQ(r.status, scan_status::reject);
    const scan_result again = s.scan("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s);
    EXPECT_EQ(again.status, scan_status::reject);
    EXPECT_EQ(again.reason, r.reason);
}

TEST(HeadScanner, ShrunkBufferIsRejected) {
    head_scanner s({});
    ASSERT_EQ(s.scan("GET / HTTP/1.1\r\nHost").status, scan_status::incomplete);
    const scan_result r = s.scan("GET");
    EXPECT_EQ(r.status, scan_status::reject);
    EXPECT_EQ(r.http_status, 400);
}

TEST(HeadScanner, RequestLineLimitIsExactAndFiresBeforeCrlf) {
    head_limits limits;
    limits.request_line = 16;
    // "GET /0123456789A" is exactly 16 bytes: allowed.
    EXPECT_EQ(scan_once("GET /0123456789A\r\n", limits).status, scan_status::incomplete);
    // The 17th byte is refused at once, without waiting for the CRLF.
    const scan_result over = scan_once("GET /0123456789AB", limits);
    EXPECT_EQ(over.status, scan_status::reject);
    EXPECT_EQ(over.http_status, 414);
}

TEST(HeadScanner, FieldBlockLimitCountsFieldLinesWithCrlf) {
    head_limits limits;
    limits.request_headers = 10;
    // "Host: abc\r\n" is 11 bytes; "Host: ab\r\n" is 10.
    EXPECT_EQ(scan_once("GET / HTTP/1.1\r\nHost: ab\r\n\r\n", limits).status,
              scan_status::complete);
    const scan_result over = scan_once("GET / HTTP/1.1\r\nHost: abc\r\n\r\n", limits);
    EXPECT_EQ(over.status, scan_status::reject);
    EXPECT_EQ(over.http_status, 431);
    // Unterminated: 431 as soon as the 11th byte arrives.
    const scan_result early = scan_once("GET / HTTP/1.1\r\nHost: abcdefg", limits);
    EXPECT_EQ(early.status, scan_status::reject);
    EXPECT_EQ(early.http_status, 431);
}

TEST(HeadScanner, HeaderCountLimit) {
    head_limits limits;
    limits.header_count = 2;
    EXPECT_EQ(scan_once("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", limits).status,
              scan_status::complete);
    const scan_result r = scan_once("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC", limits);
    EXPECT_EQ(r.status, scan_status::reject);
    EXPECT_EQ(r.http_status, 431);
}

TEST(HeadScanner, Http10WithoutFields) {
    const scan_result r = scan_once("GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(r.status, scan_status::complete);
    EXPECT_EQ(r.head_size, 18u);
}

struct scanner_row {
    const char* name;
    std::string bytes;
    int status;  // 0 = complete
};

class ScannerTable : public ::testing::TestWithParam<scanner_row> {};

TEST_P(ScannerTable, Outcome) {
    const scanner_row& row = GetParam();
    const scan_result r = scan_once(row.bytes);
    if (row.status == 0) {
        EXPECT_EQ(r.status, scan_status::complete) << r.reason;
    } else {
        EXPECT_EQ(r.status, scan_status::reject);
        EXPECT_EQ(r.http_status, row.status) << r.reason;
    }
}

using namespace std::string_literals;

INSTANTIATE_TEST_SUITE_P(
    Http, ScannerTable,
    ::testing::Values(scanner_row{"plain", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
                      scanner_row{"tab_in_value", "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", 0},
                      scanner_row{"obs_text_value", "GET / HTTP/1.1\r\nX: \xff\x80\r\n\r\n", 0},
                      scanner_row{"empty_value", "GET / HTTP/1.1\r\nX:\r\n\r\n", 0},
                      scanner_row{"high_byte_target_left_to_validator",
                                  "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 0},
                      scanner_row{"obs_fold_sp", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
                      scanner_row{"obs_fold_tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400},
                      scanner_row{"bare_lf_line", "GET / HTTP/1.1\n\r\n", 400},
                      scanner_row{"bare_lf_field", "GET / HTTP/1.1\r\nX: a\n\r\n", 400},
                      scanner_row{"bare_lf_end", "GET / HTTP/1.1\r\nX: a\r\n\n", 400},
                      scanner_row{"bare_cr_line", "GET / HTTP/1.1\rX", 400},
                      scanner_row{"bare_cr_value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
                      scanner_row{"nul_line", "GET /\0 HTTP/1.1\r\n\r\n"s, 400},
                      scanner_row{"nul_value", "GET / HTTP/1.1\r\nX: \0\r\n\r\n"s, 400},
                      scanner_row{"esc_value", "GET / HTTP/1.1\r\nX: \x1b\r\n\r\n", 400},
                      scanner_row{"del_value", "GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", 400},
                      scanner_row{"tab_line", "GET\t/ HTTP/1.1\r\n\r\n", 400},
                      scanner_row{"leading_crlf", "\r\nGET / HTTP/1.1\r\n\r\n", 400},
                      scanner_row{"leading_lf", "\nGET / HTTP/1.1\r\n\r\n", 400},
                      scanner_row{"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
                      scanner_row{"tab_before_colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
                      scanner_row{"no_colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400},
                      scanner_row{"empty_name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
                      scanner_row{"separator_in_name", "GET / HTTP/1.1\r\nX/Y: a\r\n\r\n", 400},
                      scanner_row{"high_byte_in_name", "GET / HTTP/1.1\r\nX\xe9: a\r\n\r\n", 400}),
    [](const ::testing::TestParamInfo<scanner_row>& p) { return p.param.name; });

}  // namespace
}  // namespace mailgate::http
