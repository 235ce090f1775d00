// The validator on its own, with heads built field by field: several of these inputs never
// get past Beast's parser, but the validator must not rely on that (Beast's behaviour
// changes between releases, see ANCHORS-CODE.md section 1).
#include "http/head_validator.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <utility>

namespace mailgate::http {
namespace {

namespace bhttp = boost::beast::http;

using field_list = std::initializer_list<std::pair<const char*, const char*>>;

bhttp::request_header<> make_head(field_list fields, const char* target = "/", int version = 11,
                                  bhttp::verb method = bhttp::verb::post) {
    bhttp::request_header<> h;
    h.method(method);
    h.target(target);
    h.version(version);
    for (const auto& [name, value] : fields) h.insert(name, value);
    return h;
}

int status_of(const bhttp::request_header<>& h) {
    request_info info;
    return validate_request_head(h, info).http_status;
}

TEST(HeadValidator, ContentLengthAndTransferEncodingEitherOrder) {
    EXPECT_EQ(status_of(make_head(
                  {{"Host", "a"}, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}})),
              400);
    EXPECT_EQ(status_of(make_head(
                  {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}})),
              400);
}

TEST(HeadValidator, TransferEncodingMustBeExactlyOneChunked) {
    for (const char* te : {"gzip", "chunked, gzip", "gzip, chunked", "xchunked", "chunkedx",
                           "chunked x", "chunked,", ",chunked", "chunked;q=1", "identity", ""}) {
        EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Transfer-Encoding", te}})), 400) << te;
    }
    EXPECT_EQ(
        status_of(make_head(
            {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"transfer-encoding", "chunked"}})),
        400);
    request_info info;
    ASSERT_TRUE(
        validate_request_head(make_head({{"Host", "a"}, {"Transfer-Encoding", "cHuNkEd"}}), info));
    EXPECT_EQ(info.framing, body_framing::chunked);
}

TEST(HeadValidator, TransferEncodingOnHttp10) {
    EXPECT_EQ(status_of(make_head({{"Transfer-Encoding", "chunked"}}, "/", 10)), 400);
}

TEST(HeadValidator, ContentLengthSyntax) {
    for (const char* cl :
         {"5, 5", "5,5", "+5", "-1", "5a", "0x5", "", " ", "5 5", "1e3", "99999999999999999999"}) {
        EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Content-Length", cl}})), 400) << cl;
    }
    EXPECT_EQ(
        status_of(make_head({{"Host", "a"}, {"Content-Length", "5"}, {"Content-Length", "5"}})),
        400);
    request_info info;
    ASSERT_TRUE(validate_request_head(make_head({{"Host", "a"}, {"Content-Length", "42"}}), info));
    EXPECT_EQ(info.framing, body_framing::content_length);
    EXPECT_EQ(info.content_length, 42u);
}

TEST(HeadValidator, Host) {
    EXPECT_EQ(status_of(make_head({})), 400);
    EXPECT_EQ(status_of(make_head({}, "/", 10)), 0);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"host", "a"}})), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Host", "b"}}, "/", 10)), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "user:pw@a"}})), 400);
}

TEST(HeadValidator, Target) {
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "http://a/")), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "a:443", 11, bhttp::verb::connect)), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "*", 11, bhttp::verb::get)), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "*", 11, bhttp::verb::options)), 0);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "/a#b")), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "/a b")), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "/\xc3\xa9")), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "/\x7f")), 400);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}}, "")), 400);
}

TEST(HeadValidator, ExpectIs417) {
    EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Expect", "100-continue"}})), 0);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Expect", "something"}})), 417);
    EXPECT_EQ(status_of(make_head({{"Host", "a"}, {"Expect", ""}})), 417);
}

TEST(HeadValidator, ResetsInfoBetweenCalls) {
    request_info info;
    ASSERT_TRUE(validate_request_head(
        make_head({{"Host", "a"}, {"Content-Length", "7"}, {"Expect", "100-continue"}}), info));
    // info's views point into the head, so it must outlive them.
    const auto head = make_head({{"Host", "a"}}, "/x?y", 11, bhttp::verb::get);
    ASSERT_TRUE(validate_request_head(head, info));
    EXPECT_EQ(info.framing, body_framing::none);
    EXPECT_EQ(info.content_length, 0u);
    EXPECT_FALSE(info.expect_continue);
    EXPECT_EQ(info.path, "/x");
    EXPECT_EQ(info.query, "y");
}

}  // namespace
}  // namespace mailgate::http
