// The heads mailgate writes: hop-by-hop removal, framing rebuilt, forwarding fields,
// the response header policy and generated replies.
#include "http/messages.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/message.hpp>

namespace bhttp = boost::beast::http;
using namespace mailgate::http;

namespace {

constexpr std::string_view hsts =
    "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n";

header_policy default_policy() {
    header_policy p;
    p.remove = {"server", "x-powered-by", "x-feserver"};
    p.add = {{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}};
    p.set = {{"X-Frame-Options", "SAMEORIGIN"}};
    return p;
}

std::size_t count(const std::string& hay, std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
        ++n;
    return n;
}

}  // namespace

TEST(UpstreamRequest, DropsHopByHopAndRebuildsChunkedFraming) {
    bhttp::request_header<> h;
    h.method(bhttp::verb::post);
    h.target("/Microsoft-Server-ActiveSync?Cmd=Sync&User=a+b");
    h.version(11);
    h.insert("Host", "mail.example.com");
    h.insert("Connection", "keep-alive, X-Secret, Host");
    h.insert("X-Secret", "1");
    h.insert("Keep-Alive", "timeout=5");
    h.insert("Proxy-Connection", "keep-alive");
    h.insert("TE", "trailers");
    h.insert("Trailer", "X-T");
    h.insert("Upgrade", "websocket");
    h.insert("Transfer-Encoding", "chunked");
    h.insert("Expect", "100-continue");
    h.insert("X-Forwarded-For", "6.6.6.6");
    h.insert("User-Agent", "Apple-iPhone/1");
    request_info info;
    info.framing = body_framing::chunked;
    std::string out;
    build_upstream_request(h, info, "192.0.2.7", "upstream.internal", out);

    EXPECT_TRUE(
        out.starts_with("POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=a+b HTTP/1.1\r\n"));
    EXPECT_TRUE(out.ends_with("\r\n\r\n"));
    for (const char* gone : {"Connection:", "X-Secret", "Keep-Alive", "Proxy-Connection",
                             "TE:", "Trailer:", "Upgrade:", "Expect:", "6.6.6.6"})
        EXPECT_EQ(out.find(gone), std::string::npos) << gone << " leaked into\n" << out;
    EXPECT_NE(out.find("Host: mail.example.com\r\n"), std::string::npos);
    EXPECT_NE(out.find("User-Agent: Apple-iPhone/1\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Forwarded-For: 192.0.2.7\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos);
    EXPECT_EQ(count(out, "Transfer-Encoding: chunked\r\n"), 1u);
    EXPECT_EQ(out.find("Content-Length"), std::string::npos);
}

TEST(UpstreamRequest, ContentLengthWrittenOnceFromTheValidatedValue) {
    bhttp::request_header<> h;
    h.method(bhttp::verb::put);
    h.target("/ews/exchange.asmx");
    h.version(10);
    h.insert("Host", "m");
    h.insert("Content-Length", "0005");
    request_info info;
    info.framing = body_framing::content_length;
    info.content_length = 5;
    std::string out;
    build_upstream_request(h, info, "::1", "upstream.internal", out);
    EXPECT_TRUE(out.starts_with("PUT /ews/exchange.asmx HTTP/1.1\r\n"));
    EXPECT_EQ(count(out, "Content-Length"), 1u);
    EXPECT_NE(out.find("Content-Length: 5\r\n"), std::string::npos);
    EXPECT_EQ(out.find("0005"), std::string::npos);
}

TEST(UpstreamRequest, NoBodyMeansNoFramingField) {
    bhttp::request_header<> h;
    h.method(bhttp::verb::get);
    h.target("/owa/");
    h.insert("Host", "m");
    request_info info;
    std::string out;
    build_upstream_request(h, info, "127.0.0.1", "upstream.internal", out);
    EXPECT_EQ(out.find("Content-Length"), std::string::npos);
    EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
}

TEST(ClientResponse, AppliesHeaderPolicyAndRebuildsFraming) {
    bhttp::response_header<> h;
    h.result(200);
    h.reason("OK");
    h.insert("Server", "Microsoft-IIS/10.0");
    h.insert("X-Powered-By", "ASP.NET");
    h.insert("X-FEServer", "EXCH01");
    h.insert("X-Frame-Options", "ALLOWALL");
    h.insert("Strict-Transport-Security", "max-age=1");
    h.insert("Transfer-Encoding", "chunked");
    h.insert("Connection", "keep-alive");
    h.insert("Content-Type", "text/html");
    std::string out;
    build_client_response(h, default_policy(), hsts, response_framing::content_length, 42, true,
                          out);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n"));
    for (const char* gone : {"Server:", "X-Powered-By", "EXCH01", "ALLOWALL", "max-age=1",
                             "Transfer-Encoding", "Connection:"})
        EXPECT_EQ(out.find(gone), std::string::npos) << gone << " leaked into\n" << out;
    EXPECT_NE(out.find("Content-Type: text/html\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Frame-Options: SAMEORIGIN\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
    EXPECT_NE(out.find("Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n"),
              std::string::npos);
    EXPECT_NE(out.find("Content-Length: 42\r\n"), std::string::npos);
}

TEST(ClientResponse, AddKeepsTheUpstreamsFieldSetReplacesIt) {
    bhttp::response_header<> h;
    h.result(200);
    h.insert("referrer-policy", "same-origin");  // upstream's own: kept, ours not added
    h.insert("X-Frame-Options", "ALLOWALL");     // set: replaced
    std::string out;
    build_client_response(h, default_policy(), hsts, response_framing::content_length, 0, true,
                          out);
    EXPECT_EQ(count(out, "eferrer-") + count(out, "eferrer-P"), 1u) << out;
    EXPECT_NE(out.find("referrer-policy: same-origin\r\n"), std::string::npos) << out;
    EXPECT_EQ(count(out, "X-Frame-Options"), 1u) << out;
    EXPECT_NE(out.find("X-Frame-Options: SAMEORIGIN\r\n"), std::string::npos) << out;
    // An add entry the upstream did not send is added.
    EXPECT_NE(out.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos) << out;
}

TEST(ClientResponse, NoHstsOnTheListenerLetsTheUpstreamsThrough) {
    bhttp::response_header<> h;
    h.result(200);
    h.insert("Strict-Transport-Security", "max-age=1");
    std::string out;
    build_client_response(h, default_policy(), {}, response_framing::content_length, 0, true, out);
    EXPECT_EQ(count(out, "Strict-Transport-Security: max-age=1\r\n"), 1u) << out;
}

TEST(HeaderPolicy, LocationEntriesWinForTheNamesTheyMention) {
    header_policy local;
    local.remove = {"x-content-type-options"};
    local.set = {{"Referrer-Policy", "no-referrer-when-downgrade"}};
    local.add = {{"Cache-Control", "no-store"}};
    const auto m = header_policy::merged(default_policy(), local);
    EXPECT_EQ(m.remove, (std::vector<std::string>{"server", "x-powered-by", "x-feserver",
                                                  "x-content-type-options"}));
    EXPECT_EQ(m.set,
              (header_policy::field_list{{"X-Frame-Options", "SAMEORIGIN"},
                                         {"Referrer-Policy", "no-referrer-when-downgrade"}}));
    EXPECT_EQ(m.add, (header_policy::field_list{{"Cache-Control", "no-store"}}));
}

TEST(Redirect, HttpsLocationFromHostOrFixedName) {
    request_info info;
    info.host = "mail.example.com:80";
    info.path = "/owa/";
    info.query = "a=1";
    EXPECT_EQ(https_location(info, "", 443), "https://mail.example.com/owa/?a=1");
    EXPECT_EQ(https_location(info, "", 8443), "https://mail.example.com:8443/owa/?a=1");
    EXPECT_EQ(https_location(info, "webmail.example.com", 443),
              "https://webmail.example.com/owa/?a=1");
    info.host = "[::1]:80";
    info.path = "*";
    info.query = {};
    EXPECT_EQ(https_location(info, "", 443), "https://[::1]/");
    info.host = "[::1]";
    EXPECT_EQ(https_location(info, "", 443), "https://[::1]/");
    info.host = {};
    EXPECT_EQ(https_location(info, "", 443), "");
}

TEST(Redirect, ReplyIs301WithoutHsts) {
    std::string out;
    build_redirect_reply("https://mail.example.com/", default_policy(), out);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 301 Moved Permanently\r\n")) << out;
    EXPECT_NE(out.find("Location: https://mail.example.com/\r\n"), std::string::npos);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(out.find("Strict-Transport-Security"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
}

TEST(ClientResponse, CloseAndChunkedFraming) {
    bhttp::response_header<> h;
    h.result(200);
    std::string out;
    build_client_response(h, default_policy(), hsts, response_framing::chunked, 0, false, out);
    EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n"));  // reason filled in when absent
}

TEST(ClientResponse, HeadResponseKeepsInformationalContentLength) {
    bhttp::response_header<> h;
    h.result(200);
    h.insert("Content-Length", "1234");
    std::string out;
    build_client_response(h, default_policy(), hsts, response_framing::none, 0, true, out);
    EXPECT_EQ(count(out, "Content-Length: 1234\r\n"), 1u);
}

TEST(ErrorReply, MinimalAndAnonymous) {
    std::string out;
    build_error_reply(400, default_policy(), hsts, true, out);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
    EXPECT_NE(out.find("Strict-Transport-Security"), std::string::npos);
    EXPECT_TRUE(out.ends_with("\r\n\r\nBad Request\n"));
    EXPECT_NE(out.find("Content-Length: 12\r\n"), std::string::npos);
    for (const char* leak : {"mailgate", "Server:", "Boost", "Beast"})
        EXPECT_EQ(out.find(leak), std::string::npos) << leak;
    std::string keep;
    build_error_reply(404, default_policy(), hsts, false, keep);
    EXPECT_EQ(keep.find("Connection:"), std::string::npos);
}
