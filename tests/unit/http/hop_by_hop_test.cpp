#include "http/hop_by_hop.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::http {
namespace {

namespace bhttp = boost::beast::http;

// Forwarded names, in order, after dropping what the set calls hop-by-hop.
std::vector<std::string> forwarded(const bhttp::fields& f) {
    const hop_by_hop_set hop(f);
    std::vector<std::string> out;
    for (const auto& field : f) {
        if (!hop.is_hop_by_hop(field.name_string())) out.emplace_back(field.name_string());
    }
    return out;
}

TEST(HopByHop, FixedNamesAreDropped) {
    bhttp::fields f;
    f.insert("Host", "mail.example.com");
    f.insert("Connection", "keep-alive");
    f.insert("Keep-Alive", "timeout=5");
    f.insert("Proxy-Connection", "keep-alive");
    f.insert("TE", "trailers");
    f.insert("Trailer", "X-Checksum");
    f.insert("Upgrade", "websocket");
    f.insert("Transfer-Encoding", "chunked");
    f.insert("Content-Length", "5");
    f.insert("User-Agent", "Outlook");
    EXPECT_EQ(forwarded(f), (std::vector<std::string>{"Host", "User-Agent"}));
}

TEST(HopByHop, ConnectionNamedFieldsAreDropped) {
    bhttp::fields f;
    f.insert("Connection", "close, x-foo");
    f.insert("X-Foo", "1");
    f.insert("X-Bar", "2");
    f.insert("Cookie", "a=b");
    EXPECT_EQ(forwarded(f), (std::vector<std::string>{"X-Bar", "Cookie"}));
}

TEST(HopByHop, NamesCompareCaseInsensitively) {
    bhttp::fields f;
    f.insert("connection", "X-FOO ,  X-Baz");
    const hop_by_hop_set hop(f);
    EXPECT_TRUE(hop.is_hop_by_hop("x-foo"));
    EXPECT_TRUE(hop.is_hop_by_hop("X-Foo"));
    EXPECT_TRUE(hop.is_hop_by_hop("x-baz"));
    EXPECT_TRUE(hop.is_hop_by_hop("KEEP-ALIVE"));
    EXPECT_TRUE(hop.is_hop_by_hop("te"));
    EXPECT_TRUE(hop.is_hop_by_hop("Transfer-encoding"));
    EXPECT_TRUE(hop.is_hop_by_hop("CONTENT-LENGTH"));
    EXPECT_FALSE(hop.is_hop_by_hop("x-fo"));
    EXPECT_FALSE(hop.is_hop_by_hop("x-foo2"));
    EXPECT_FALSE(hop.is_hop_by_hop("Content-Type"));
    EXPECT_FALSE(hop.is_hop_by_hop("Authorization"));
    EXPECT_FALSE(hop.is_hop_by_hop(""));
}

TEST(HopByHop, EveryConnectionFieldCounts) {
    bhttp::fields f;
    f.insert("Connection", "x-one");
    f.insert("Connection", "x-two,,");
    f.insert("X-One", "1");
    f.insert("X-Two", "2");
    f.insert("X-Three", "3");
    EXPECT_EQ(forwarded(f), (std::vector<std::string>{"X-Three"}));
}

TEST(HopByHop, ManyNamesAreAllKept) {
    bhttp::fields f;
    std::string list;
    for (int i = 0; i < 40; ++i) list += "x-h" + std::to_string(i) + ", ";
    f.insert("Connection", list);
    const hop_by_hop_set hop(f);
    for (int i = 0; i < 40; ++i) EXPECT_TRUE(hop.is_hop_by_hop("X-H" + std::to_string(i)));
    EXPECT_FALSE(hop.is_hop_by_hop("x-h40"));
}

TEST(HopByHop, SafeToEraseWhileAsking) {
    bhttp::fields f;
    f.insert("Connection", "x-foo");
    f.insert("X-Foo", "1");
    f.insert("Accept", "*/*");
    const hop_by_hop_set hop(f);
    for (auto it = f.begin(); it != f.end();) {
        it = hop.is_hop_by_hop(it->name_string()) ? f.erase(it) : std::next(it);
    }
    ASSERT_EQ(std::distance(f.begin(), f.end()), 1);
    EXPECT_EQ(f.begin()->name_string(), "Accept");
}

TEST(HopByHop, NoConnectionField) {
    bhttp::fields f;
    f.insert("Host", "a");
    f.insert("Accept", "*/*");
    EXPECT_EQ(forwarded(f), (std::vector<std::string>{"Host", "Accept"}));
}

}  // namespace
}  // namespace mailgate::http

// Beast 1.81's equal_range walks the insertion-ordered list from the first to the last
// match: a field between two Connection fields must not be read as a Connection field.
TEST(HopByHop, FieldBetweenTwoConnectionFieldsIsNotAConnectionField) {
    boost::beast::http::fields f;
    f.insert("Connection", "x-a");
    f.insert("X-Keep", "close, x-keep-me");
    f.insert("Connection", "x-b");
    const mailgate::http::hop_by_hop_set hop(f);
    EXPECT_TRUE(hop.is_hop_by_hop("X-A"));
    EXPECT_TRUE(hop.is_hop_by_hop("x-b"));
    EXPECT_FALSE(hop.is_hop_by_hop("X-Keep"));
    EXPECT_FALSE(hop.is_hop_by_hop("x-keep-me"));
}
