// Location routing: longest prefix on a segment boundary of the normalized path.
#include "runtime/snapshot.hpp"

#include <gtest/gtest.h>

using mailgate::runtime::compiled_location;
using mailgate::runtime::snapshot;

namespace {
snapshot with_locations(std::initializer_list<const char*> prefixes) {
    snapshot s;
    std::size_t i = 0;
    for (const char* p : prefixes) {
        compiled_location l;
        l.prefix = p;
        l.upstream = i++;
        s.locations.push_back(l);
    }
    std::stable_sort(s.locations.begin(), s.locations.end(), [](const auto& a, const auto& b) {
        return a.prefix.size() > b.prefix.size();
    });
    return s;
}
}  // namespace

TEST(Route, LongestPrefixOnSegmentBoundary) {
    const auto s = with_locations({"/", "/microsoft-server-activesync", "/owa", "/owa/auth"});
    auto up = [&](std::string_view path) {
        const auto* l = s.route(path);
        return l ? static_cast<int>(l->upstream) : -1;
    };
    EXPECT_EQ(up("/"), 0);
    EXPECT_EQ(up("/microsoft-server-activesync"), 1);
    EXPECT_EQ(up("/microsoft-server-activesync/x"), 1);
    EXPECT_EQ(up("/owa"), 2);
    EXPECT_EQ(up("/owa/"), 2);
    EXPECT_EQ(up("/owa/auth/logon.aspx"), 3);
    EXPECT_EQ(up("/owax"), 0);       // not under /owa
    EXPECT_EQ(up("/owa/authx"), 2);  // not under /owa/auth
    EXPECT_EQ(up("/ecp/"), 0);
}

TEST(Route, NoCatchAllMeansNoMatch) {
    const auto s = with_locations({"/owa"});
    EXPECT_EQ(s.route("/ews"), nullptr);
    EXPECT_NE(s.route("/owa/x"), nullptr);
}
