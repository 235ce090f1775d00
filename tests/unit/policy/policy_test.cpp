#include "policy/policy.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy_test_util.hpp"

namespace {

using namespace mailgate;
using namespace mailgate::policy;
using namespace mailgate::policy::test;

struct result {
    std::string decided;  // name of verdict.decided_by, "" when none
    action outcome = action::allow;
    std::vector<std::string> reported;
};

result run(const config::root& cfg, const request& r, std::size_t location_index = 0) {
    auto c = compile(cfg);
    EXPECT_TRUE(c.set) << (c.diags.items().empty() ? "" : c.diags.items()[0].to_string());
    if (!c.set) return {};
    verdict v;
    c.set->evaluate(r.facts(), location_index, v);
    result out;
    if (v.decided_by) out.decided = v.decided_by->name;
    out.outcome = v.outcome();
    for (std::size_t i = 0; i < v.reported_count; ++i) out.reported.push_back(v.reported[i]->name);
    return out;
}

config::root with_global(std::vector<config::rule_section> rules) {
    config::root cfg;
    cfg.request_blocking = std::move(rules);
    cfg.locations.push_back(location("/"));
    return cfg;
}

// Whether a single `if` rule with this block fires for the request.
bool fires_if(config::condition_block b, const request& r) {
    return run(with_global({rule_if("r", std::move(b), action::forbidden)}), r).decided ==
           "global/r";
}
bool fires_if_not(config::condition_block b, const request& r) {
    return run(with_global({rule_if_not("r", std::move(b), action::forbidden)}), r).decided ==
           "global/r";
}

// ---- conditions ---------------------------------------------------------------------------

TEST(Conditions, EmptyIfAlwaysFiresAndEmptyIfNotNever) {
    EXPECT_TRUE(fires_if(block{}, request{}));
    EXPECT_FALSE(fires_if_not(block{}, request{}));
}

TEST(Conditions, UserAgentAnyPatternSearchesTheValue) {
    auto b = block{}.user_agent({"^Apple-iPhone", "^iOS/", "Boxer"});
    EXPECT_TRUE(fires_if(b, request{}.ua("Apple-iPhone9C1/1905.258")));
    EXPECT_TRUE(fires_if(b, request{}.ua("iOS/17.2 (21C62) dataaccessd/1.0")));
    EXPECT_TRUE(fires_if(b, request{}.ua("VMware Boxer/8.1")));  // unanchored: anywhere
    EXPECT_FALSE(fires_if(b, request{}.ua("Android-Mail/2023.11")));
    EXPECT_FALSE(fires_if(b, request{}.ua("x Apple-iPhone")));  // ^ anchors
    EXPECT_FALSE(fires_if(b, request{}.ua("iOS")));
}

TEST(Conditions, UserAgentIsCaseInsensitiveUnlessThePatternSaysOtherwise) {
    auto b = block{}.user_agent({"^apple-iphone"});
    EXPECT_TRUE(fires_if(b, request{}.ua("APPLE-IPHONE/1")));
    EXPECT_TRUE(fires_if(b, request{}.ua("Apple-iPhone/1")));
    // RE2's inline flag (?-i) clears the case folding the options turned on.
    auto exact = block{}.user_agent({"(?-i)^Apple-iPhone"});
    EXPECT_TRUE(fires_if(exact, request{}.ua("Apple-iPhone/1")));
    EXPECT_FALSE(fires_if(exact, request{}.ua("apple-iphone/1")));
    auto group = block{}.user_agent({"^(?-i:Boxer)/x"});
    EXPECT_TRUE(fires_if(group, request{}.ua("Boxer/X")));
    EXPECT_FALSE(fires_if(group, request{}.ua("boxer/x")));
}

TEST(Conditions, MissingUserAgentIsTheEmptyString) {
    EXPECT_TRUE(fires_if(block{}.user_agent({"^$"}), request{}));
    EXPECT_FALSE(fires_if(block{}.user_agent({"."}), request{}));
    // The monitor-only rule aborts a request without a User-Agent.
    EXPECT_TRUE(fires_if_not(block{}.user_agent({"Site24x7"}), request{}));
}

// Latin-1: any byte is a character, so a byte that is not UTF-8 cannot slip between `.`s.
TEST(Conditions, UserAgentPatternsSeeEveryByte) {
    auto b = block{}.user_agent({"evil.*tool", "^[^;]*;$"});
    EXPECT_TRUE(fires_if(b, request{}.ua("evil\xff\xfetool")));
    EXPECT_TRUE(fires_if(b, request{}.ua("a\x80\xc0;")));
    // A UTF-8 literal in a pattern still matches the same bytes in the header.
    EXPECT_TRUE(fires_if(block{}.user_agent({"caf\xc3\xa9"}), request{}.ua("Caf\xc3\xa9/1")));
}

TEST(Conditions, ClientIp) {
    auto b = block{}.client_ip({"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"});
    EXPECT_TRUE(fires_if(b, request{}.from("10.1.2.3")));
    EXPECT_TRUE(fires_if(b, request{}.from("::ffff:10.1.2.3")));
    EXPECT_TRUE(fires_if(b, request{}.from("2001:db8::5")));
    EXPECT_TRUE(fires_if(b, request{}.from("192.0.2.7")));
    EXPECT_FALSE(fires_if(b, request{}.from("192.0.2.8")));
    EXPECT_FALSE(fires_if(b, request{}.from("2001:db9::5")));
}

TEST(Conditions, MethodIsExactAndCaseSensitive) {
    auto b = block{}.method({"POST", "PUT"});
    EXPECT_TRUE(fires_if(b, request{}.with_method("POST")));
    EXPECT_TRUE(fires_if(b, request{}.with_method("PUT")));
    EXPECT_FALSE(fires_if(b, request{}.with_method("post")));
    EXPECT_FALSE(fires_if(b, request{}.with_method("GET")));
    EXPECT_FALSE(fires_if(b, request{}.with_method("POSTX")));
    EXPECT_FALSE(fires_if(b, request{}.with_method("POS")));
}

TEST(Conditions, HeaderValueMatchesAnyPattern) {
    auto b = block{}.header("Authorization", {"^Basic ", "^NTLM "});
    EXPECT_TRUE(fires_if(b, request{}.header("Authorization", "Basic dXNlcjpwdw==")));
    EXPECT_TRUE(fires_if(b, request{}.header("authorization", "ntlm TlRMTVNTUAAB")));
    EXPECT_FALSE(fires_if(b, request{}.header("Authorization", "Bearer x")));
    EXPECT_FALSE(fires_if(b, request{}.header("X-Authorization", "Basic x")));
}

TEST(Conditions, HeaderWithSeveralFieldsMatchesWhenAnyDoes) {
    auto b = block{}.header("X-Test", {"^two$"});
    EXPECT_TRUE(fires_if(b, request{}.header("X-Test", "one").header("X-Test", "two")));
    EXPECT_TRUE(fires_if(b, request{}.header("X-Test", "two").header("X-Test", "three")));
    EXPECT_FALSE(fires_if(b, request{}.header("X-Test", "one").header("X-Test", "three")));
    // One field is one value: a comma-separated list is not split.
    EXPECT_FALSE(fires_if(b, request{}.header("X-Test", "one, two")));
}

// Beast 1.81's equal_range spans every field between the first and last match: a field
// of another name in between must not be read as the named header.
TEST(Conditions, FieldBetweenTwoNamedFieldsIsNotTheNamedHeader) {
    auto b = block{}.header("X-Test", {"^evil$"});
    EXPECT_FALSE(fires_if(
        b, request{}.header("X-Test", "one").header("X-Other", "evil").header("X-Test", "two")));
    EXPECT_TRUE(fires_if(
        b, request{}.header("X-Test", "one").header("X-Other", "x").header("X-Test", "evil")));
}

TEST(Conditions, MissingHeaderIsTheEmptyString) {
    auto empty = block{}.header("X-Test", {"^$"});
    EXPECT_TRUE(fires_if(empty, request{}));
    EXPECT_TRUE(fires_if(empty, request{}.header("X-Other", "v")));
    auto no_fields = request{};
    no_fields.with_fields = false;
    EXPECT_TRUE(fires_if(empty, no_fields));
    EXPECT_FALSE(fires_if(empty, request{}.header("X-Test", "v")));
    EXPECT_TRUE(fires_if(empty, request{}.header("X-Test", "v").header("X-Test", "")));
}

TEST(Conditions, EveryListedHeaderMustHold) {
    auto b = block{}.header("X-A", {"^1$"}).header("X-B", {"^2$"});
    EXPECT_TRUE(fires_if(b, request{}.header("X-A", "1").header("X-B", "2")));
    EXPECT_FALSE(fires_if(b, request{}.header("X-A", "1")));
    EXPECT_FALSE(fires_if(b, request{}.header("X-B", "2")));
}

TEST(Conditions, QueryMatchesTheRawValue) {
    auto plus = block{}.query("q", {"^a\\+b$"});
    EXPECT_TRUE(fires_if(plus, request{}.q("q=a+b")));
    EXPECT_FALSE(fires_if(plus, request{}.q("q=a%2Bb")));
    EXPECT_FALSE(fires_if(plus, request{}.q("q=a b")));
    auto letter = block{}.query("Cmd", {"^A$"});
    EXPECT_FALSE(fires_if(letter, request{}.q("Cmd=%41")));  // never decoded
    EXPECT_TRUE(fires_if(block{}.query("Cmd", {"^%41$"}), request{}.q("Cmd=%41")));
    auto space = block{}.query("q", {"^a b$"});
    EXPECT_FALSE(fires_if(space, request{}.q("q=a+b")));
}

TEST(Conditions, QueryParameterNamesAreCaseInsensitiveAndRaw) {
    auto b = block{}.query("Cmd", {"^Sync$"});
    EXPECT_TRUE(fires_if(b, request{}.q("User=u&Cmd=Sync&DeviceId=d")));
    EXPECT_TRUE(fires_if(b, request{}.q("cmd=Sync")));
    EXPECT_TRUE(fires_if(b, request{}.q("CMD=sync")));     // value patterns fold case too
    EXPECT_FALSE(fires_if(b, request{}.q("%43md=Sync")));  // the name is not decoded either
    EXPECT_FALSE(fires_if(b, request{}.q("Cmdx=Sync")));
    EXPECT_FALSE(fires_if(b, request{}.q("xCmd=Sync")));
}

TEST(Conditions, QueryOccurrencesAndOddShapes) {
    auto sync = block{}.query("Cmd", {"^Sync$"});
    EXPECT_TRUE(fires_if(sync, request{}.q("Cmd=Ping&Cmd=Sync")));
    EXPECT_TRUE(fires_if(sync, request{}.q("&&Cmd=Sync&")));
    EXPECT_FALSE(fires_if(sync, request{}.q("Cmd=Ping&Cmd=Ping")));
    // The value runs from the first '=' to the next '&'.
    EXPECT_TRUE(fires_if(block{}.query("a", {"^b=c$"}), request{}.q("a=b=c")));
    // A missing parameter, and one without '=', are both the empty string.
    auto empty = block{}.query("Cmd", {"^$"});
    EXPECT_TRUE(fires_if(empty, request{}));
    EXPECT_TRUE(fires_if(empty, request{}.q("User=u")));
    EXPECT_TRUE(fires_if(empty, request{}.q("Cmd")));
    EXPECT_TRUE(fires_if(empty, request{}.q("Cmd=")));
    EXPECT_FALSE(fires_if(empty, request{}.q("Cmd=Sync")));
}

TEST(Conditions, AllPresentConditionsMustHold) {
    auto b = block{}
                 .method({"POST"})
                 .client_ip({"10.0.0.0/8"})
                 .user_agent({"^curl/"})
                 .header("X-A", {"1"})
                 .query("p", {"v"});
    auto match = [] {
        return request{}
            .with_method("POST")
            .from("10.0.0.1")
            .ua("curl/8")
            .header("X-A", "1")
            .q("p=v");
    };
    EXPECT_TRUE(fires_if(b, match()));
    EXPECT_FALSE(fires_if(b, match().with_method("GET")));
    EXPECT_FALSE(fires_if(b, match().from("11.0.0.1")));
    EXPECT_FALSE(fires_if(b, match().ua("wget/1")));
    EXPECT_FALSE(fires_if(b, match().q("p=w")));
    auto no_header = match();
    no_header.fields.clear();
    EXPECT_FALSE(fires_if(b, no_header));
}

TEST(Conditions, AbsentConditionsAreNotChecked) {
    auto b = block{}.method({"GET"});
    EXPECT_TRUE(fires_if(b, request{}.from("2001:db8::1").ua("anything").q("x=y")));
}

TEST(Conditions, AnEmptyListNeverMatches) {
    const request r = request{}.ua("Apple-iPhone").header("X-A", "").q("a=");
    for (auto b : {block{}.user_agent({}), block{}.client_ip({}), block{}.method({}),
                   block{}.header("X-A", {}), block{}.query("a", {})}) {
        EXPECT_FALSE(fires_if(b, r));
        // ...so the same block under if_not always fires.
        EXPECT_TRUE(fires_if_not(b, r));
    }
}

TEST(Conditions, IfNotFiresWhenTheBlockDoesNotHold) {
    auto b = block{}.user_agent({"Site24x7"});
    EXPECT_FALSE(fires_if_not(b, request{}.ua("Site24x7 (https://site24x7.com)")));
    EXPECT_TRUE(fires_if_not(b, request{}.ua("Mozilla/5.0")));
    // With several conditions it is the whole AND that is negated.
    auto two = block{}.user_agent({"Site24x7"}).client_ip({"192.0.2.0/24"});
    EXPECT_FALSE(fires_if_not(two, request{}.ua("Site24x7").from("192.0.2.9")));
    EXPECT_TRUE(fires_if_not(two, request{}.ua("Site24x7").from("198.51.100.1")));
    EXPECT_TRUE(fires_if_not(two, request{}.ua("curl").from("192.0.2.9")));
}

// ---- actions -------------------------------------------------------------------------------

TEST(Actions, EveryActionIsTheOutcome) {
    for (auto act : {action::abort, action::forbidden, action::not_found, action::unauthorized,
                     action::too_many_requests}) {
        auto r = run(with_global({rule_if("r", block{}, act)}), request{});
        EXPECT_EQ(r.decided, "global/r");
        EXPECT_EQ(r.outcome, act);
    }
    auto r = run(with_global({rule_if("r", block{}, action::allow)}), request{});
    EXPECT_EQ(r.decided, "global/r");
    EXPECT_EQ(r.outcome, action::allow);
}

TEST(Actions, NamesAndStatuses) {
    EXPECT_EQ(to_string(action::allow), "allow");
    EXPECT_EQ(to_string(action::abort), "abort");
    EXPECT_EQ(to_string(action::forbidden), "forbidden");
    EXPECT_EQ(to_string(action::not_found), "not_found");
    EXPECT_EQ(to_string(action::unauthorized), "unauthorized");
    EXPECT_EQ(to_string(action::too_many_requests), "too_many_requests");
    EXPECT_EQ(to_string(rule_mode::enforce), "enforce");
    EXPECT_EQ(to_string(rule_mode::report), "report");
    EXPECT_EQ(status_of(action::allow), 0);
    EXPECT_EQ(status_of(action::abort), 0);
    EXPECT_EQ(status_of(action::forbidden), 403);
    EXPECT_EQ(status_of(action::not_found), 404);
    EXPECT_EQ(status_of(action::unauthorized), 401);
    EXPECT_EQ(status_of(action::too_many_requests), 429);
}

TEST(Actions, NoRuleFiresMeansThePassWithNoRule) {
    auto r = run(with_global({rule_if("r", block{}.method({"POST"}), action::abort)}), request{});
    EXPECT_EQ(r.decided, "");
    EXPECT_EQ(r.outcome, action::allow);
    EXPECT_TRUE(r.reported.empty());
}

// ---- order ---------------------------------------------------------------------------------

TEST(Order, FirstRuleThatFiresDecides) {
    auto cfg = with_global({rule_if("post", block{}.method({"POST"}), action::not_found),
                            rule_if("curl", block{}.user_agent({"curl"}), action::forbidden),
                            rule_if("any", block{}, action::abort)});
    EXPECT_EQ(run(cfg, request{}.with_method("POST").ua("curl")).decided, "global/post");
    EXPECT_EQ(run(cfg, request{}.ua("curl")).decided, "global/curl");
    EXPECT_EQ(run(cfg, request{}.ua("curl")).outcome, action::forbidden);
    EXPECT_EQ(run(cfg, request{}).decided, "global/any");
}

TEST(Order, GlobalThenIpRestrictionsThenLocationRules) {
    config::root cfg;
    cfg.request_blocking = {rule_if("g", block{}.user_agent({"^global$"}), action::not_found)};
    auto loc = location("/owa", {rule_if("l", block{}, action::unauthorized)});
    loc.ip_restrictions = ipr{}.allow({"10.0.0.0/8"});
    cfg.locations.push_back(loc);
    EXPECT_EQ(run(cfg, request{}.ua("global").from("192.0.2.1")).decided, "global/g");
    EXPECT_EQ(run(cfg, request{}.from("192.0.2.1")).decided, "/owa/ip_restrictions");
    EXPECT_EQ(run(cfg, request{}.from("10.0.0.1")).decided, "/owa/l");
}

TEST(Order, GlobalAllowStopsEvaluationBeforeTheLocation) {
    config::root cfg;
    cfg.request_blocking = {rule_if("monitor", block{}.client_ip({"192.0.2.10"}), action::allow)};
    auto loc = location("/", {rule_if("all", block{}, action::abort)});
    loc.ip_restrictions = ipr{}.allow({"127.0.0.1"});
    cfg.locations.push_back(loc);
    auto r = run(cfg, request{}.from("192.0.2.10"));
    EXPECT_EQ(r.decided, "global/monitor");
    EXPECT_EQ(r.outcome, action::allow);
    EXPECT_EQ(run(cfg, request{}.from("192.0.2.11")).decided, "/ip_restrictions");
    EXPECT_EQ(run(cfg, request{}.from("127.0.0.1")).decided, "/all");
}

TEST(Order, LocationAllowStopsLaterRules) {
    config::root cfg;
    cfg.locations.push_back(
        location("/ews", {rule_if("trusted", block{}.client_ip({"10.0.0.0/8"}), action::allow),
                          rule_if("rest", block{}, action::forbidden)}));
    EXPECT_EQ(run(cfg, request{}.from("10.9.9.9")).outcome, action::allow);
    EXPECT_EQ(run(cfg, request{}.from("10.9.9.9")).decided, "/ews/trusted");
    EXPECT_EQ(run(cfg, request{}.from("11.0.0.1")).decided, "/ews/rest");
}

TEST(Order, OnlyTheChosenLocationsRulesApply) {
    config::root cfg;
    cfg.locations.push_back(location("/", {rule_if("root", block{}, action::abort)}));
    cfg.locations.push_back(
        location("/Microsoft-Server-ActiveSync",
                 {rule_if_not("approved", block{}.user_agent({"^Apple-"}), action::abort)}));
    cfg.locations.push_back(location("/owa"));
    EXPECT_EQ(run(cfg, request{}.ua("Apple-iPhone"), 0).decided, "/root");
    EXPECT_EQ(run(cfg, request{}.ua("Apple-iPhone"), 1).decided, "");
    EXPECT_EQ(run(cfg, request{}.ua("Android"), 1).decided,
              "/Microsoft-Server-ActiveSync/approved");
    EXPECT_EQ(run(cfg, request{}.ua("Android"), 2).decided, "");
}

// ---- report mode ---------------------------------------------------------------------------

TEST(Report, AReportRuleIsNotedAndEvaluationGoesOn) {
    auto cfg = with_global(
        {rule_if("trial", block{}.user_agent({"curl"}), action::abort, rule_mode::report),
         rule_if("post", block{}.method({"POST"}), action::forbidden)});
    auto r = run(cfg, request{}.ua("curl"));
    EXPECT_EQ(r.decided, "");
    EXPECT_EQ(r.outcome, action::allow);
    EXPECT_EQ(r.reported, std::vector<std::string>{"global/trial"});
    r = run(cfg, request{}.ua("curl").with_method("POST"));
    EXPECT_EQ(r.decided, "global/post");
    EXPECT_EQ(r.outcome, action::forbidden);
    EXPECT_EQ(r.reported, std::vector<std::string>{"global/trial"});
    r = run(cfg, request{}.ua("wget"));
    EXPECT_TRUE(r.reported.empty());
}

TEST(Report, AReportAllowDoesNotStopEvaluation) {
    auto cfg = with_global({rule_if("allow", block{}, action::allow, rule_mode::report),
                            rule_if("deny", block{}, action::forbidden)});
    auto r = run(cfg, request{});
    EXPECT_EQ(r.decided, "global/deny");
    EXPECT_EQ(r.reported, std::vector<std::string>{"global/allow"});
}

TEST(Report, ReportedRulesAreCappedAndKeepTheirOrder) {
    std::vector<config::rule_section> rules;
    for (int i = 0; i < 6; ++i)
        rules.push_back(
            rule_if("r" + std::to_string(i), block{}, action::abort, rule_mode::report));
    rules.push_back(rule_if("last", block{}, action::not_found));
    auto r = run(with_global(rules), request{});
    EXPECT_EQ(r.decided, "global/last");
    ASSERT_EQ(r.reported.size(), verdict::max_reported);
    EXPECT_EQ(r.reported.front(), "global/r0");
    EXPECT_EQ(r.reported.back(), "global/r" + std::to_string(verdict::max_reported - 1));
}

TEST(Report, PolicyModeReportTurnsEveryRuleIntoReport) {
    config::root cfg;
    cfg.policy_mode = rule_mode::report;
    cfg.request_blocking = {rule_if("g", block{}, action::abort, rule_mode::enforce),
                            rule_if("allow", block{}, action::allow)};
    auto loc = location("/servlet", {rule_if("l", block{}, action::forbidden)});
    loc.ip_restrictions = ipr{}.allow({"127.0.0.1"});
    cfg.locations.push_back(loc);
    auto r = run(cfg, request{}.from("192.0.2.1"));
    EXPECT_EQ(r.decided, "");
    EXPECT_EQ(r.outcome, action::allow);
    EXPECT_EQ(r.reported, (std::vector<std::string>{"global/g", "global/allow",
                                                    "/servlet/ip_restrictions", "/servlet/l"}));
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);
    for (const auto& info : c.set->rules()) EXPECT_EQ(info.mode, rule_mode::report) << info.name;
}

TEST(Report, RuleModeIsKeptWithoutPolicyMode) {
    auto cfg = with_global({rule_if("a", block{}, action::abort, rule_mode::report),
                            rule_if("b", block{}, action::abort, rule_mode::enforce),
                            rule_if("c", block{}, action::abort)});
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);
    ASSERT_EQ(c.set->rules().size(), 3u);
    EXPECT_EQ(c.set->rules()[0].mode, rule_mode::report);
    EXPECT_EQ(c.set->rules()[1].mode, rule_mode::enforce);
    EXPECT_EQ(c.set->rules()[2].mode, rule_mode::enforce);
}

// ---- ip_restrictions -----------------------------------------------------------------------

result run_ip(config::ip_restrictions_section restrictions, const char* client) {
    config::root cfg;
    auto loc = location("/servlet");
    loc.ip_restrictions = std::move(restrictions);
    cfg.locations.push_back(loc);
    return run(cfg, request{}.from(client));
}

TEST(IpRestrictions, AllowListRefusesEveryoneElse) {
    config::ip_restrictions_section restr = ipr{}.allow({"127.0.0.1/32", "::1/128"});
    EXPECT_EQ(run_ip(restr, "127.0.0.1").decided, "");
    EXPECT_EQ(run_ip(restr, "::1").decided, "");
    EXPECT_EQ(run_ip(restr, "::ffff:127.0.0.1").decided, "");
    auto r = run_ip(restr, "127.0.0.2");
    EXPECT_EQ(r.decided, "/servlet/ip_restrictions");
    EXPECT_EQ(r.outcome, action::forbidden);  // the default action
    EXPECT_EQ(run_ip(restr, "::2").decided, "/servlet/ip_restrictions");
}

TEST(IpRestrictions, DenyListRefusesOnlyTheListed) {
    config::ip_restrictions_section restr =
        ipr{}.deny({"192.0.2.0/24", "2001:db8::/32"}).act(action::abort);
    EXPECT_EQ(run_ip(restr, "192.0.2.200").outcome, action::abort);
    EXPECT_EQ(run_ip(restr, "2001:db8::1").outcome, action::abort);
    EXPECT_EQ(run_ip(restr, "198.51.100.1").decided, "");
}

TEST(IpRestrictions, DenyWinsOverAllow) {
    config::ip_restrictions_section restr =
        ipr{}.allow({"10.0.0.0/8"}).deny({"10.0.0.66"}).act(action::not_found);
    EXPECT_EQ(run_ip(restr, "10.0.0.66").outcome, action::not_found);  // in both
    EXPECT_EQ(run_ip(restr, "10.0.0.67").decided, "");                 // allowed, not denied
    EXPECT_EQ(run_ip(restr, "11.0.0.1").outcome, action::not_found);   // in neither
}

TEST(IpRestrictions, AnEmptyAllowListRefusesEveryone) {
    config::ip_restrictions_section restr = ipr{}.allow({});
    EXPECT_EQ(run_ip(restr, "127.0.0.1").decided, "/servlet/ip_restrictions");
    EXPECT_EQ(run_ip(restr, "::1").decided, "/servlet/ip_restrictions");
    EXPECT_EQ(run_ip(ipr{}.deny({}), "127.0.0.1").decided, "");
}

TEST(IpRestrictions, ReportMode) {
    config::ip_restrictions_section restr = ipr{}.allow({"127.0.0.1"}).mode(rule_mode::report);
    auto r = run_ip(restr, "192.0.2.1");
    EXPECT_EQ(r.decided, "");
    EXPECT_EQ(r.reported, std::vector<std::string>{"/servlet/ip_restrictions"});
}

// ---- compile -------------------------------------------------------------------------------

TEST(Compile, RuleNamesAndDenseIdsInOrder) {
    config::root cfg;
    cfg.request_blocking = {rule_if("shield", block{}, action::abort)};
    auto root_loc = location("/", {rule_if_not("monitor-only", block{}, action::abort)});
    auto servlet = location("/Servlet");
    servlet.ip_restrictions = ipr{}.allow({"127.0.0.1"});
    servlet.request_blocking = {rule_if("post", block{}, action::not_found, rule_mode::report)};
    cfg.locations = {root_loc, servlet};
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);
    const auto& rules = c.set->rules();
    ASSERT_EQ(rules.size(), 4u);
    EXPECT_EQ(rules[0].name, "global/shield");
    EXPECT_EQ(rules[1].name, "/monitor-only");
    EXPECT_EQ(rules[2].name, "/Servlet/ip_restrictions");
    EXPECT_EQ(rules[3].name, "/Servlet/post");
    EXPECT_EQ(rules[2].act, action::forbidden);
    EXPECT_EQ(rules[3].act, action::not_found);
    EXPECT_EQ(rules[3].mode, rule_mode::report);
    for (std::uint32_t i = 0; i < rules.size(); ++i) EXPECT_EQ(rules[i].id, i);
    EXPECT_TRUE(c.diags.items().empty());
}

TEST(Compile, EmptyConfigurationPassesEverything) {
    config::root cfg;
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);
    EXPECT_TRUE(c.set->rules().empty());
    verdict v;
    v.reported_count = 3;  // evaluate starts from a clean verdict
    c.set->evaluate(request{}.facts(), 0, v);
    EXPECT_EQ(v.decided_by, nullptr);
    EXPECT_EQ(v.reported_count, 0);
}

TEST(Compile, InvalidRegexIsReportedAtItsMark) {
    config::root cfg;
    auto b = block{}.user_agent({"ok"});
    b.b.user_agent.push_back(ms("(unclosed", 12, 34));
    b.b.header.emplace_back(ms("X-A"), std::vector{ms("[z-a]", 20, 5)});
    b.b.query.emplace_back(ms("Cmd"), std::vector{ms("a**", 21, 7)});
    cfg.request_blocking = {rule_if("r", b, action::abort)};
    auto c = compile(cfg);
    EXPECT_FALSE(c.set);
    const auto& items = c.diags.items();
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(items[0].level, config::severity::error);
    EXPECT_EQ(items[0].mark.line, 12);
    EXPECT_EQ(items[0].mark.column, 34);
    EXPECT_EQ(items[0].message, "invalid regex '(unclosed': missing ): (unclosed");
    EXPECT_EQ(items[1].mark.line, 20);
    EXPECT_EQ(items[1].mark.column, 5);
    EXPECT_EQ(items[1].message.rfind("invalid regex '[z-a]': ", 0), 0u) << items[1].message;
    EXPECT_EQ(items[2].mark.line, 21);
    EXPECT_EQ(items[2].message.rfind("invalid regex 'a**': ", 0), 0u) << items[2].message;
}

TEST(Compile, InvalidCidrIsReportedAtItsMark) {
    config::root cfg;
    auto b = block{};
    b.b.has_client_ip = true;
    b.b.client_ip = {ms("10.0.0.1/8", 3, 9), ms("10.0.0.0/8", 3, 20)};
    cfg.request_blocking = {rule_if("r", b, action::abort)};
    auto loc = location("/servlet");
    config::ip_restrictions_section restr = ipr{}.allow({"127.0.0.1"});
    restr.allow.push_back(ms("::1/129", 7, 11));
    restr.deny.push_back(ms("localhost", 8, 12));
    loc.ip_restrictions = restr;
    cfg.locations.push_back(loc);
    auto c = compile(cfg);
    EXPECT_FALSE(c.set);
    const auto& items = c.diags.items();
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(items[0].mark.line, 3);
    EXPECT_EQ(items[0].mark.column, 9);
    EXPECT_EQ(items[0].message,
              "invalid CIDR '10.0.0.1/8': host bits set (the network is 10.0.0.0/8)");
    EXPECT_EQ(items[1].mark.line, 7);
    EXPECT_EQ(items[1].mark.column, 11);
    EXPECT_EQ(items[1].message,
              "invalid CIDR '::1/129': prefix length must be a number from 0 to 128");
    EXPECT_EQ(items[2].mark.line, 8);
    EXPECT_EQ(items[2].message, "invalid CIDR 'localhost': not an IP address");
}

// ---- the blog's setup ----------------------------------------------------------------------

config::root blog_example() {
    config::root cfg;
    cfg.locations.push_back(location(
        "/", {rule_if_not("monitor-only", block{}.user_agent({"Site24x7"}), action::abort)}));
    cfg.locations.push_back(location(
        "/Microsoft-Server-ActiveSync",
        {rule_if_not("approved-mail-clients",
                     block{}.user_agent({"^Apple-iPhone", "^Apple-iPad", "^iOS/", "Boxer"}),
                     action::abort)}));
    auto servlet = location("/servlet");
    servlet.ip_restrictions = ipr{}.allow({"127.0.0.1/32", "::1/128"});
    cfg.locations.push_back(servlet);
    return cfg;
}

TEST(BlogExample, Decisions) {
    const auto cfg = blog_example();
    const auto monitor = request{}.ua("Site24x7 (https://www.site24x7.com)");
    EXPECT_EQ(run(cfg, monitor, 0).outcome, action::allow);
    EXPECT_EQ(run(cfg, request{}.ua("Mozilla/5.0"), 0).outcome, action::abort);
    EXPECT_EQ(run(cfg, request{}.ua("Mozilla/5.0"), 0).decided, "/monitor-only");
    EXPECT_EQ(run(cfg, request{}.ua("Apple-iPhone15C2/2101.73"), 1).outcome, action::allow);
    EXPECT_EQ(run(cfg, request{}.ua("Android-Mail/2023.11.26"), 1).outcome, action::abort);
    EXPECT_EQ(run(cfg, monitor, 1).outcome, action::abort);
    EXPECT_EQ(run(cfg, request{}.from("127.0.0.1"), 2).outcome, action::allow);
    EXPECT_EQ(run(cfg, request{}.from("127.0.0.2"), 2).outcome, action::forbidden);
}

}  // namespace
