#include "policy/pattern_set.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/conditions.hpp"

namespace {

using mailgate::config::diagnostics;
using mailgate::config::marked_string;
using mailgate::policy::any_query_value;
using mailgate::policy::pattern_set;

pattern_set make(std::vector<std::string> patterns) {
    std::vector<marked_string> in;
    for (auto& p : patterns) in.push_back({p, {1, 1}});
    pattern_set s;
    diagnostics d;
    EXPECT_TRUE(s.compile(in, d));
    EXPECT_TRUE(d.items().empty());
    return s;
}

TEST(PatternSet, EmptySetMatchesNothing) {
    const auto s = make({});
    EXPECT_EQ(s.size(), 0u);
    EXPECT_FALSE(s.match(""));
    EXPECT_FALSE(s.match("anything"));
    EXPECT_FALSE(s.match_each(""));
}

TEST(PatternSet, SetAndOneByOneAgree) {
    const auto s = make({"^Apple-iPhone", "^iOS/", "Boxer", "(?-i)^Outlook-iOS/", "^$",
                         "evil.*tool", "[0-9]{4}-[0-9]{2}"});
    for (const char* text : {"", "Apple-iPhone9C1/1905", "apple-ipad", "iOS/17", "x iOS/17",
                             "VMware boxer", "Outlook-iOS/2.0", "outlook-ios/2.0", "evil\xfftool",
                             "build 2024-01", "Android-Mail", "BOXER"}) {
        EXPECT_EQ(s.match(text), s.match_each(text)) << text;
    }
    EXPECT_TRUE(s.match("BOXER"));
    EXPECT_FALSE(s.match("outlook-ios/2.0"));
    EXPECT_TRUE(s.match(""));
}

TEST(PatternSet, ThousandsOfPatternsCompileAndMatch) {
    std::vector<std::string> patterns;
    for (int i = 0; i < 2000; ++i) patterns.push_back("^Client-" + std::to_string(i) + "/");
    const auto s = make(patterns);
    EXPECT_EQ(s.size(), 2000u);
    EXPECT_TRUE(s.match("Client-1999/1.0"));
    EXPECT_TRUE(s.match("client-0/"));
    EXPECT_FALSE(s.match("Client-2000/1.0"));
    EXPECT_FALSE(s.match("Mozilla/5.0 Client-7/"));
}

TEST(PatternSet, EveryBadPatternIsReported) {
    std::vector<marked_string> in{{"ok", {1, 2}}, {"(", {3, 4}}, {"x{2,1}", {5, 6}}};
    pattern_set s;
    diagnostics d;
    EXPECT_FALSE(s.compile(in, d));
    ASSERT_EQ(d.items().size(), 2u);
    EXPECT_EQ(d.items()[0].mark.line, 3);
    EXPECT_EQ(d.items()[0].message, "invalid regex '(': missing ): (");
    EXPECT_EQ(d.items()[1].mark.line, 5);
    EXPECT_EQ(d.items()[1].message.rfind("invalid regex 'x{2,1}': ", 0), 0u);
}

// A backtracking engine would take exponential time here; RE2 stays linear.
TEST(PatternSet, NoCatastrophicBacktracking) {
    const auto s = make({"^(a+)+$", "(x+x+)+y"});
    const std::string text = std::string(20000, 'a') + "!" + std::string(20000, 'x');
    EXPECT_FALSE(s.match(text));
}

std::vector<std::string> values(std::string_view query, std::string_view name) {
    std::vector<std::string> out;
    any_query_value(query, name, [&](std::string_view v) {
        out.emplace_back(v);
        return false;
    });
    return out;
}

TEST(QueryValues, SplitsOnAmpersandThenFirstEquals) {
    using v = std::vector<std::string>;
    EXPECT_EQ(values("Cmd=Sync&User=u&DeviceId=abc", "Cmd"), v{"Sync"});
    EXPECT_EQ(values("Cmd=Sync&User=u&DeviceId=abc", "deviceid"), v{"abc"});
    EXPECT_EQ(values("a=1&a=2&A=3", "a"), (v{"1", "2", "3"}));
    EXPECT_EQ(values("a=b=c", "a"), v{"b=c"});
    EXPECT_EQ(values("a", "a"), v{""});
    EXPECT_EQ(values("a=", "a"), v{""});
    EXPECT_EQ(values("q=a+b%20c", "q"), v{"a+b%20c"});
    EXPECT_EQ(values("&&a=1&&", "a"), v{"1"});
    EXPECT_EQ(values("=x", ""), v{"x"});
    // Absent: called once with the empty string.
    EXPECT_EQ(values("", "a"), v{""});
    EXPECT_EQ(values("b=1", "a"), v{""});
    EXPECT_EQ(values("ab=1&%61=2", "a"), v{""});
}

TEST(QueryValues, StopsAtTheFirstMatch) {
    int calls = 0;
    EXPECT_TRUE(any_query_value("a=1&a=2&a=3", "a", [&](std::string_view v) {
        ++calls;
        return v == "2";
    }));
    EXPECT_EQ(calls, 2);
}

}  // namespace
