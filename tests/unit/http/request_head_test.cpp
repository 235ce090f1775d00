#include "http/request_head.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace mailgate::http {
namespace {

// The parser outlives the views in `info`, so tests hold it next to the result.
class RequestHead : public ::testing::Test {
protected:
    head_outcome parse(std::string head, head_limits limits = {}) {
        head_ = std::move(head);
        parser_.emplace();
        return parse_request_head(head_, limits, *parser_, info_, normalized_);
    }

    std::string head_;
    std::optional<request_parser> parser_;
    request_info info_;
    std::string normalized_;
};

TEST_F(RequestHead, FillsInfoForGet) {
    ASSERT_TRUE(
        parse("GET /OWA/Auth/../?ae=Item&a=%2F HTTP/1.1\r\nHost: Mail.Example.com\r\n\r\n"));
    EXPECT_EQ(info_.framing, body_framing::none);
    EXPECT_EQ(info_.content_length, 0u);
    EXPECT_TRUE(info_.keep_alive);
    EXPECT_FALSE(info_.expect_continue);
    EXPECT_EQ(info_.host, "Mail.Example.com");
    EXPECT_EQ(info_.path, "/OWA/Auth/../");
    EXPECT_EQ(info_.query, "ae=Item&a=%2F");
    EXPECT_EQ(normalized_, "/owa/");
    EXPECT_TRUE(parser_->is_header_done());
    EXPECT_TRUE(parser_->is_done());
}

TEST_F(RequestHead, EmptyQueryAfterQuestionMark) {
    ASSERT_TRUE(parse("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_EQ(info_.path, "/a");
    EXPECT_EQ(info_.query, "");
}

TEST_F(RequestHead, QuerySplitsAtFirstQuestionMark) {
    ASSERT_TRUE(parse("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_EQ(info_.path, "/a");
    EXPECT_EQ(info_.query, "b?c");
}

TEST_F(RequestHead, ContentLengthFramingLeavesParserReadyForBody) {
    ASSERT_TRUE(parse("POST /ews HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\n"));
    EXPECT_EQ(info_.framing, body_framing::content_length);
    EXPECT_EQ(info_.content_length, 5u);
    EXPECT_TRUE(parser_->is_header_done());
    EXPECT_FALSE(parser_->is_done());
    ASSERT_TRUE(parser_->content_length());
    EXPECT_EQ(*parser_->content_length(), 5u);
}

TEST_F(RequestHead, ChunkedFraming) {
    ASSERT_TRUE(parse("POST /eas HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"));
    EXPECT_EQ(info_.framing, body_framing::chunked);
    EXPECT_TRUE(parser_->chunked());
    EXPECT_FALSE(parser_->is_done());
}

TEST_F(RequestHead, ContentLengthAboveBeastDefaultBodyLimitIsAccepted) {
    // Beast's default request body_limit is 1 MiB; the session enforces the real one.
    ASSERT_TRUE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 157286401\r\n\r\n"));
    EXPECT_EQ(info_.content_length, 157286401u);
}

TEST_F(RequestHead, ContentLengthMaxUint64) {
    ASSERT_TRUE(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n"));
    EXPECT_EQ(info_.content_length, 18446744073709551615ull);
}

TEST_F(RequestHead, KeepAliveRules) {
    ASSERT_TRUE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
    EXPECT_FALSE(info_.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"));
    EXPECT_TRUE(info_.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n"));
    EXPECT_FALSE(info_.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_FALSE(info_.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    EXPECT_TRUE(info_.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
    EXPECT_FALSE(info_.keep_alive);
}

TEST_F(RequestHead, ExpectContinue) {
    ASSERT_TRUE(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n"));
    EXPECT_TRUE(info_.expect_continue);
    // HTTP/1.0 clients cannot wait for a 100 (RFC 9110 10.1.1).
    ASSERT_TRUE(parse("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"));
    EXPECT_FALSE(info_.expect_continue);
    const head_outcome bad = parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n");
    EXPECT_EQ(bad.http_status, 417);
    const head_outcome twice =
        parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n");
    EXPECT_EQ(twice.http_status, 417);
}

TEST_F(RequestHead, FramingErrorWinsOverExpect) {
    const head_outcome r = parse(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n"
        "Expect: nope\r\n\r\n");
    EXPECT_EQ(r.http_status, 400);
}

TEST_F(RequestHead, OptionsAsterisk) {
    ASSERT_TRUE(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_EQ(info_.path, "*");
    EXPECT_EQ(info_.query, "");
    EXPECT_EQ(normalized_, "*");
    EXPECT_EQ(parse("OPTIONS *?x HTTP/1.1\r\nHost: a\r\n\r\n").http_status, 400);
    EXPECT_EQ(parse("POST * HTTP/1.1\r\nHost: a\r\n\r\n").http_status, 400);
}

TEST_F(RequestHead, Http10HostOptionalButChecked) {
    ASSERT_TRUE(parse("GET / HTTP/1.0\r\nHost: a:80\r\n\r\n"));
    EXPECT_EQ(info_.host, "a:80");
    EXPECT_EQ(parse("GET / HTTP/1.0\r\nHost: a b\r\n\r\n").http_status, 400);
}

struct host_row {
    const char* host;
    bool ok;
};

class HostTable : public ::testing::TestWithParam<host_row> {};

TEST_P(HostTable, Validates) {
    const host_row& row = GetParam();
    const std::string head = std::string("GET / HTTP/1.1\r\nHost: ") + row.host + "\r\n\r\n";
    request_parser parser;
    request_info info;
    std::string normalized;
    const head_outcome r = parse_request_head(head, {}, parser, info, normalized);
    EXPECT_EQ(static_cast<bool>(r), row.ok) << row.host << ": " << r.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Http, HostTable,
    ::testing::Values(host_row{"mail.example.com", true}, host_row{"MAIL.example.COM:443", true},
                      host_row{"localhost", true}, host_row{"192.0.2.1:8443", true},
                      host_row{"[::1]", true}, host_row{"[2001:db8::1]:443", true},
                      host_row{"[::ffff:192.0.2.1]", true}, host_row{"a:0", true},
                      host_row{"a:65535", true}, host_row{"a:65536", false}, host_row{"a:", false},
                      host_row{":443", false}, host_row{"a:443:1", false},
                      host_row{"a:+443", false}, host_row{"a:123456", false},
                      host_row{"user@a", false}, host_row{"a/b", false}, host_row{"a?b", false},
                      host_row{"a#b", false}, host_row{"a%2eb", false}, host_row{"a,b", false},
                      host_row{"[::1", false}, host_row{"[]", false}, host_row{"[::1]x", false},
                      host_row{"[::1]:", false}, host_row{"[fe80::1%25eth0]", false},
                      host_row{"[v1.x]", false}, host_row{"::1", false}));

TEST_F(RequestHead, BeastErrorsMapTo400) {
    EXPECT_EQ(parse("G(T / HTTP/1.1\r\nHost: a\r\n\r\n").http_status, 400);
    EXPECT_EQ(parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n").http_status, 400);
    EXPECT_EQ(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n").http_status, 400);
    EXPECT_EQ(parse("GET / HTTP/1.1 \r\nHost: a\r\n\r\n").http_status, 400);
}

TEST_F(RequestHead, HeadWithoutEndIsRefused) {
    // The caller passes what the scanner called complete; anything else must not be
    // taken as a head, whatever Beast makes of it.
    const head_outcome r = parse("GET / HTTP/1.1\r\nHost: a\r\n");
    EXPECT_EQ(r.http_status, 400);
}

TEST_F(RequestHead, TrailingBytesAreNotPartOfTheHead) {
    // Body bytes passed as part of the head: Beast stops at the header (eager(false)) and
    // the length check notices.
    const head_outcome r = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    EXPECT_EQ(r.http_status, 400);
}

TEST_F(RequestHead, ReusedParserIsRefused) {
    ASSERT_TRUE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n"));
    const head_outcome r =
        parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n", {}, *parser_, info_, normalized_);
    EXPECT_EQ(r.http_status, 400);
}

TEST_F(RequestHead, OuterHeaderLimitFollowsConfiguredLimits) {
    // 9000-byte field block with request_headers raised to 32 KiB: the safety net
    // (request_line + request_headers + 1024) must not refuse it, unlike Beast's 8 KiB default.
    head_limits limits;
    limits.request_headers = 32 * 1024;
    const std::string head =
        "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
    EXPECT_TRUE(parse(head, limits));
}

}  // namespace
}  // namespace mailgate::http
