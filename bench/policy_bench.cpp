// ns per policy_set::evaluate() call. The numbers go in the issue note:
//   cmake --build build/release --target policy_bench -j1
//   ./build/release/bench/policy_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"
#include "policy/policy.hpp"

namespace {

using namespace mailgate;
using config::action;

config::marked_string ms(std::string s) { return {std::move(s), {}}; }

config::rule_section rule(std::string name, config::condition_block b, bool negate, action a) {
    config::rule_section r;
    r.name = std::move(name);
    r.condition = std::move(b);
    r.negate = negate;
    r.act = a;
    return r;
}

config::condition_block user_agents(const std::vector<std::string>& patterns) {
    config::condition_block b;
    for (const auto& p : patterns) b.user_agent.push_back(ms(p));
    b.has_user_agent = true;
    return b;
}

config::location_section location(std::string path) {
    config::location_section l;
    l.path = std::move(path);
    l.upstream = "exchange";
    return l;
}

std::shared_ptr<const policy::policy_set> compile(const config::root& cfg) {
    config::diagnostics diags;
    auto set = policy::policy_set::compile(cfg, diags);
    if (!set) {
        for (const auto& d : diags.items()) std::fprintf(stderr, "%s\n", d.to_string().c_str());
        std::abort();
    }
    return set;
}

// The blog's setup: no global rules; / for the monitor only; ActiveSync for iOS Mail and
// Boxer; /servlet from localhost only.
const policy::policy_set& blog() {
    static const auto set = [] {
        config::root cfg;
        auto root = location("/");
        root.request_blocking.push_back(
            rule("monitor-only", user_agents({"Site24x7"}), true, action::abort));
        auto eas = location("/Microsoft-Server-ActiveSync");
        eas.request_blocking.push_back(rule(
            "approved-mail-clients",
            user_agents({"^Apple-iPhone", "^Apple-iPad", "^iOS/", "Boxer"}), true, action::abort));
        auto servlet = location("/servlet");
        config::ip_restrictions_section ipr;
        ipr.allow = {ms("127.0.0.1/32"), ms("::1/128")};
        ipr.has_allow = true;
        servlet.ip_restrictions = ipr;
        cfg.locations = {root, eas, servlet};
        return compile(cfg);
    }();
    return *set;
}

// One location: a rule with 10,000 CIDRs (5,000 IPv4 /24 and 5,000 IPv6 /48, none adjacent,
// so nothing merges) and a rule with 1,000 user-agent patterns.
const policy::policy_set& large(bool anchored) {
    auto build = [anchored] {
        config::root cfg;
        auto loc = location("/");
        config::condition_block ips;
        ips.has_client_ip = true;
        char buf[64];
        for (int i = 0; i < 5000; ++i) {
            std::snprintf(buf, sizeof buf, "10.%d.%d.0/24", (2 * i) / 256, (2 * i) % 256);
            ips.client_ip.push_back(ms(buf));
            std::snprintf(buf, sizeof buf, "2001:db8:%x::/48", 2 * i);
            ips.client_ip.push_back(ms(buf));
        }
        loc.request_blocking.push_back(rule("blocked-networks", ips, false, action::forbidden));
        std::vector<std::string> patterns;
        for (int i = 0; i < 1000; ++i) {
            std::snprintf(buf, sizeof buf, anchored ? "^Client-%d/" : "Client-%d/", i);
            patterns.push_back(buf);
        }
        loc.request_blocking.push_back(
            rule("blocked-clients", user_agents(patterns), false, action::abort));
        cfg.locations = {loc};
        return compile(cfg);
    };
    if (anchored) {
        static const auto set = build();
        return *set;
    }
    static const auto set = build();
    return *set;
}

struct request {
    boost::asio::ip::address client;
    std::string method = "POST";
    std::string user_agent;
    std::string query;
    boost::beast::http::fields fields;

    policy::request_facts facts() const {
        policy::request_facts f;
        f.client = client;
        f.method = method;
        f.user_agent = user_agent;
        f.query = query;
        f.fields = &fields;
        return f;
    }
};

request make_request(const char* ip, std::string ua) {
    request r;
    r.client = boost::asio::ip::make_address(ip);
    r.user_agent = std::move(ua);
    r.query = "Cmd=Sync&User=jdoe&DeviceId=ApplF17XK0ZZHG7F&DeviceType=iPhone";
    r.fields.insert(boost::beast::http::field::host, "mail.example.com");
    r.fields.insert(boost::beast::http::field::user_agent, r.user_agent);
    r.fields.insert("MS-ASProtocolVersion", "16.1");
    r.fields.insert(boost::beast::http::field::content_type, "application/vnd.ms-sync.wbxml");
    return r;
}

void run(benchmark::State& state, const policy::policy_set& set, const request& r,
         std::size_t location, action expected) {
    const auto facts = r.facts();
    policy::verdict v;
    set.evaluate(facts, location, v);
    if (v.outcome() != expected) {
        state.SkipWithError("unexpected outcome");
        return;
    }
    for (auto _ : state) {
        set.evaluate(facts, location, v);
        benchmark::DoNotOptimize(v);
    }
}

const char* const iphone_ua = "Apple-iPhone15C2/2101.73";
const char* const browser_ua =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";

// (a) A typical iPhone on ActiveSync: the allow-list holds, the rule does not fire.
void BM_blog_activesync_iphone(benchmark::State& state) {
    static const auto r = make_request("198.51.100.23", iphone_ua);
    run(state, blog(), r, 1, action::allow);
}
BENCHMARK(BM_blog_activesync_iphone)->ThreadRange(1, 2);

void BM_blog_activesync_android_aborted(benchmark::State& state) {
    static const auto r = make_request("198.51.100.23", "Android-Mail/2023.11.26.585334429");
    run(state, blog(), r, 1, action::abort);
}
BENCHMARK(BM_blog_activesync_android_aborted);

void BM_blog_servlet_outsider_forbidden(benchmark::State& state) {
    static const auto r = make_request("198.51.100.23", browser_ua);
    run(state, blog(), r, 2, action::forbidden);
}
BENCHMARK(BM_blog_servlet_outsider_forbidden);

// (b) Worst case for the large location: nothing matches, so both rules are checked in full.
void BM_large_no_match_v4(benchmark::State& state) {
    static const auto r = make_request("203.0.113.77", browser_ua);
    run(state, large(true), r, 0, action::allow);
}
BENCHMARK(BM_large_no_match_v4)->ThreadRange(1, 2);

void BM_large_no_match_v6(benchmark::State& state) {
    static const auto r = make_request("2001:db8:4e21::1", browser_ua);
    run(state, large(true), r, 0, action::allow);
}
BENCHMARK(BM_large_no_match_v6);

// The same with unanchored patterns: the set's DFA must read the whole User-Agent.
void BM_large_no_match_unanchored(benchmark::State& state) {
    static const auto r = make_request("203.0.113.77", browser_ua);
    run(state, large(false), r, 0, action::allow);
}
BENCHMARK(BM_large_no_match_unanchored);

void BM_large_cidr_hit(benchmark::State& state) {
    static const auto r = make_request("10.38.200.9", browser_ua);
    run(state, large(true), r, 0, action::forbidden);
}
BENCHMARK(BM_large_cidr_hit);

}  // namespace
