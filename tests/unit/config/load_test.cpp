#include "config/load.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace mailgate::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const fs::path corpus = fs::path(MAILGATE_CORPUS_DIR) / "config";
const std::string files_dir = (corpus / "files").string();

// A configuration that loads, with `extra` appended (top-level sections not used here).
std::string minimal(const std::string& extra = {}) {
    return R"(listeners:
  - name: public
    address: "0.0.0.0:443"
    tls:
      certificates:
        - { cert: mail.pem, key: mail.key }
upstreams:
  - name: exchange
    servers: ["10.0.0.11:443"]
locations:
  - path: /
    upstream: exchange
)" + extra;
}

load_result load(const std::string& yaml) { return load_string(yaml, "test.yaml", files_dir); }

std::string lines(const load_result& r) {
    std::string out;
    for (const auto& d : r.diags.items()) out += d.to_string() + "\n";
    return out;
}

// A fresh directory under /tmp, removed with its contents at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string templ = (fs::temp_directory_path() / "mailgate-config-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, ec);
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

    fs::path write(const std::string& name, const std::string& content) const {
        const fs::path p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }

private:
    fs::path path_;
};

bool running_as_root() { return ::geteuid() == 0; }

TEST(LoadMinimal, TakesTheDefaultsOfTheDesign) {
    const auto r = load(minimal());
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_TRUE(r.diags.items().empty());
    const root& c = *r.config;

    EXPECT_EQ(c.file, "test.yaml");
    EXPECT_EQ(c.server.workers, 0u);
    EXPECT_FALSE(c.server.user);
    EXPECT_EQ(c.server.drain_timeout, seconds(30));
    EXPECT_EQ(c.log.level, log_level::info);
    EXPECT_EQ(c.log.access, "stdout");

    ASSERT_EQ(c.listeners.size(), 1u);
    const auto& l = c.listeners[0];
    EXPECT_EQ(l.name, "public");
    EXPECT_EQ(l.addresses, std::vector<std::string>{"0.0.0.0:443"});
    EXPECT_EQ(l.tls.profile, tls_profile::intermediate);
    EXPECT_EQ(l.tls.hsts.max_age, hours(24 * 730));
    EXPECT_TRUE(l.tls.hsts.include_subdomains);
    ASSERT_EQ(l.tls.certificates.size(), 1u);
    EXPECT_EQ(l.tls.certificates[0].cert, files_dir + "/mail.pem");
    EXPECT_EQ(l.tls.certificates[0].key, files_dir + "/mail.key");

    ASSERT_EQ(c.upstreams.size(), 1u);
    const auto& u = c.upstreams[0];
    EXPECT_EQ(u.name, "exchange");
    EXPECT_EQ(u.servers, std::vector<std::string>{"10.0.0.11:443"});
    EXPECT_FALSE(u.tls.server_name);
    EXPECT_FALSE(u.tls.ca);
    EXPECT_EQ(u.pool.max_idle, 64u);
    EXPECT_EQ(u.pool.idle_timeout, seconds(60));

    const header_policy_section defaults;
    EXPECT_EQ(c.headers.add, defaults.add);
    EXPECT_EQ(c.headers.remove, defaults.remove);
    EXPECT_EQ(c.headers.add.size(), 3u);
    EXPECT_EQ(c.headers.remove.size(), 9u);

    EXPECT_EQ(c.limits.request_line, 8u * 1024);
    EXPECT_EQ(c.limits.request_headers, 16u * 1024);
    EXPECT_EQ(c.limits.header_count, 100u);
    EXPECT_EQ(c.limits.request_body, 150ull << 20);

    EXPECT_EQ(c.timeouts.tls_handshake, seconds(10));
    EXPECT_EQ(c.timeouts.request_header, seconds(15));
    EXPECT_EQ(c.timeouts.idle, seconds(60));
    EXPECT_EQ(c.timeouts.upstream_connect, seconds(5));
    EXPECT_EQ(c.timeouts.upstream_response, seconds(120));
    EXPECT_EQ(c.timeouts.send, seconds(60));
    EXPECT_EQ(c.timeouts.body_min_rate, 500u);

    ASSERT_EQ(c.locations.size(), 1u);
    EXPECT_EQ(c.locations[0].path, "/");
    EXPECT_EQ(c.locations[0].upstream, "exchange");
    EXPECT_FALSE(c.locations[0].timeouts.idle);
    EXPECT_FALSE(c.locations[0].timeouts.upstream_response);
    EXPECT_FALSE(c.locations[0].request_body);
}

TEST(LoadMinimal, RecordsWhereThingsWereWritten) {
    const auto r = load(minimal());
    ASSERT_TRUE(r.config) << lines(r);
    const root& c = *r.config;
    const auto& l = c.listeners[0];
    EXPECT_EQ(l.mark.line, 2);
    EXPECT_EQ(l.mark.column, 5);
    EXPECT_EQ(l.address_mark.line, 3);
    EXPECT_EQ(l.address_mark.column, 14);
    EXPECT_EQ(l.tls.mark.line, 5);
    EXPECT_EQ(l.tls.mark.column, 7);
    EXPECT_EQ(l.tls.certificates[0].cert_mark.line, 6);
    EXPECT_EQ(l.tls.certificates[0].cert_mark.column, 19);
    EXPECT_EQ(l.tls.certificates[0].key_mark.line, 6);
    EXPECT_EQ(l.tls.certificates[0].key_mark.column, 34);
    EXPECT_EQ(c.upstreams[0].mark.line, 8);
    EXPECT_EQ(c.upstreams[0].servers_mark.line, 9);
    EXPECT_EQ(c.upstreams[0].servers_mark.column, 14);
    EXPECT_EQ(c.locations[0].mark.line, 11);
    EXPECT_EQ(c.locations[0].upstream_mark.line, 12);
    EXPECT_EQ(c.locations[0].upstream_mark.column, 15);
    EXPECT_EQ(c.server.mark.line, 0);  // no server section written
}

TEST(LoadFull, ReadsEveryKey) {
    const std::string file = (corpus / "valid" / "full.yaml").string();
    const auto r = load_file(file);
    ASSERT_TRUE(r.config) << lines(r);
    const root& c = *r.config;

    EXPECT_EQ(c.file, file);
    EXPECT_EQ(c.server.workers, 4u);
    EXPECT_EQ(c.server.user, "mailgate");
    EXPECT_EQ(c.server.drain_timeout, seconds(45));
    EXPECT_EQ(c.server.mark.line, 3);
    EXPECT_EQ(c.log.level, log_level::warn);
    EXPECT_EQ(c.log.access, files_dir + "/logs/access.log");
    EXPECT_EQ(c.log.access_mark.line, 8);
    EXPECT_EQ(c.log.access_mark.column, 11);

    ASSERT_EQ(c.listeners.size(), 2u);
    const auto& pub = c.listeners[0];
    EXPECT_EQ(pub.addresses, (std::vector<std::string>{"0.0.0.0:443", "[::]:443"}));
    EXPECT_EQ(pub.tls.profile, tls_profile::modern);
    ASSERT_EQ(pub.tls.certificates.size(), 2u);
    EXPECT_EQ(pub.tls.certificates[1].cert, files_dir + "/ca.pem");
    EXPECT_EQ(pub.tls.certificates[1].cert_mark.line, 17);
    EXPECT_EQ(pub.tls.certificates[1].key_mark.line, 18);
    EXPECT_EQ(pub.tls.hsts.max_age, hours(24 * 365));
    EXPECT_FALSE(pub.tls.hsts.include_subdomains);
    EXPECT_EQ(c.listeners[1].name, "internal");
    EXPECT_EQ(c.listeners[1].addresses, std::vector<std::string>{"[::1]:8443"});

    ASSERT_EQ(c.upstreams.size(), 2u);
    const auto& ex = c.upstreams[0];
    EXPECT_EQ(ex.servers, (std::vector<std::string>{"10.0.0.11:443", "mail-be.example.com:8443",
                                                    "[fd00::11]:443"}));
    EXPECT_EQ(ex.tls.server_name, "mail.example.com");
    EXPECT_EQ(ex.tls.ca, files_dir + "/ca.pem");
    EXPECT_EQ(ex.tls.ca_mark.line, 31);
    EXPECT_EQ(ex.pool.max_idle, 16u);
    EXPECT_EQ(ex.pool.idle_timeout, seconds(90));
    EXPECT_EQ(c.upstreams[1].name, "legacy");

    using header = std::pair<std::string, std::string>;
    EXPECT_EQ(c.headers.add,
              (std::vector<header>{{"X-Frame-Options", "DENY"},
                                   {"Permissions-Policy", "camera=(), microphone=()"}}));
    EXPECT_EQ(c.headers.remove, (std::vector<std::string>{"Server", "X-Powered-By"}));

    EXPECT_EQ(c.limits.request_line, 4u * 1024);
    EXPECT_EQ(c.limits.request_headers, 32u * 1024);
    EXPECT_EQ(c.limits.header_count, 50u);
    EXPECT_EQ(c.limits.request_body, 1ull << 30);

    EXPECT_EQ(c.timeouts.tls_handshake, seconds(5));
    EXPECT_EQ(c.timeouts.request_header, seconds(10));
    EXPECT_EQ(c.timeouts.idle, minutes(2));
    EXPECT_EQ(c.timeouts.upstream_connect, milliseconds(1500));
    EXPECT_EQ(c.timeouts.upstream_response, hours(1));
    EXPECT_EQ(c.timeouts.send, seconds(30));
    EXPECT_EQ(c.timeouts.body_min_rate, 1024u);

    ASSERT_EQ(c.locations.size(), 3u);  // file order, not sorted
    EXPECT_EQ(c.locations[0].path, "/");
    EXPECT_EQ(c.locations[1].path, "/Microsoft-Server-ActiveSync");
    EXPECT_EQ(c.locations[1].timeouts.upstream_response, seconds(3660));
    EXPECT_EQ(c.locations[1].timeouts.idle, seconds(3660));
    EXPECT_EQ(c.locations[1].request_body, 50ull << 20);
    EXPECT_EQ(c.locations[2].path, "/owa");
    EXPECT_EQ(c.locations[2].upstream, "legacy");
    EXPECT_EQ(c.locations[2].timeouts.idle, minutes(5));
    EXPECT_FALSE(c.locations[2].timeouts.upstream_response);
}

// The text of each string, for comparing lists of marked strings.
std::vector<std::string> texts(const std::vector<marked_string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(s.text);
    return out;
}

void expect_mark(const source_mark& m, int line, int column) {
    EXPECT_EQ(m.line, line);
    EXPECT_EQ(m.column, column);
}

TEST(LoadPolicy, NothingWrittenMeansNoRulesAndNoProxy) {
    const auto r = load(minimal());
    ASSERT_TRUE(r.config) << lines(r);
    const root& c = *r.config;
    EXPECT_EQ(c.policy_mode, rule_mode::enforce);
    EXPECT_TRUE(c.request_blocking.empty());
    EXPECT_EQ(c.listeners[0].proxy_protocol, proxy_protocol_mode::off);
    EXPECT_TRUE(c.listeners[0].trusted_proxies.empty());
    EXPECT_FALSE(c.locations[0].ip_restrictions);
    EXPECT_TRUE(c.locations[0].request_blocking.empty());
}

TEST(LoadPolicy, ReadsEveryPolicyKey) {
    const std::string file = (corpus / "valid" / "policy.yaml").string();
    const auto r = load_file(file);
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(lines(r), "");
    const root& c = *r.config;
    EXPECT_EQ(c.policy_mode, rule_mode::report);

    ASSERT_EQ(c.listeners.size(), 2u);
    EXPECT_EQ(c.listeners[0].proxy_protocol, proxy_protocol_mode::v2);
    EXPECT_EQ(texts(c.listeners[0].trusted_proxies),
              (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
    expect_mark(c.listeners[0].trusted_proxies[0].mark, 8, 23);
    expect_mark(c.listeners[0].trusted_proxies[1].mark, 8, 37);
    EXPECT_EQ(c.listeners[1].proxy_protocol, proxy_protocol_mode::any);
    // A single string is a list of one.
    EXPECT_EQ(texts(c.listeners[1].trusted_proxies), std::vector<std::string>{"127.0.0.1"});
    expect_mark(c.listeners[1].trusted_proxies[0].mark, 15, 22);

    ASSERT_EQ(c.request_blocking.size(), 3u);
    {
        const rule_section& rule = c.request_blocking[0];
        EXPECT_EQ(rule.name, "no-scanners");
        expect_mark(rule.mark, 25, 5);
        expect_mark(rule.name_mark, 25, 11);
        EXPECT_FALSE(rule.negate);
        EXPECT_EQ(rule.act, action::abort);
        EXPECT_FALSE(rule.mode);
        const condition_block& cond = rule.condition;
        expect_mark(cond.mark, 26, 9);
        EXPECT_TRUE(cond.has_user_agent);
        EXPECT_FALSE(cond.has_client_ip);
        EXPECT_FALSE(cond.has_method);
        EXPECT_EQ(texts(cond.user_agent), (std::vector<std::string>{"sqlmap", "(?-i)Nikto"}));
        expect_mark(cond.user_agent[0].mark, 26, 24);
        expect_mark(cond.user_agent[1].mark, 26, 34);
        EXPECT_TRUE(cond.client_ip.empty());
        EXPECT_TRUE(cond.method.empty());
        EXPECT_TRUE(cond.header.empty());
        EXPECT_TRUE(cond.query.empty());
    }
    {
        const rule_section& rule = c.request_blocking[1];
        EXPECT_EQ(rule.name, "monitor");
        EXPECT_FALSE(rule.negate);
        EXPECT_EQ(rule.act, action::allow);
        EXPECT_EQ(rule.mode, rule_mode::enforce);
        const condition_block& cond = rule.condition;
        expect_mark(cond.mark, 30, 7);
        EXPECT_FALSE(cond.has_user_agent);
        EXPECT_TRUE(cond.has_client_ip);
        EXPECT_TRUE(cond.has_method);
        EXPECT_EQ(texts(cond.client_ip), std::vector<std::string>{"192.0.2.10"});
        expect_mark(cond.client_ip[0].mark, 30, 18);
        EXPECT_EQ(texts(cond.method), (std::vector<std::string>{"GET", "HEAD"}));
        expect_mark(cond.method[1].mark, 31, 21);
    }
    {
        const rule_section& rule = c.request_blocking[2];
        EXPECT_EQ(rule.name, "legacy_auth.1");
        EXPECT_TRUE(rule.negate);
        EXPECT_EQ(rule.act, action::unauthorized);
        EXPECT_EQ(rule.mode, rule_mode::report);
        const condition_block& cond = rule.condition;
        EXPECT_FALSE(cond.has_user_agent || cond.has_client_ip || cond.has_method);
        ASSERT_EQ(cond.header.size(), 2u);
        EXPECT_EQ(cond.header[0].first.text, "Authorization");  // as written
        expect_mark(cond.header[0].first.mark, 36, 17);
        EXPECT_EQ(texts(cond.header[0].second), std::vector<std::string>{"^Bearer "});
        expect_mark(cond.header[0].second[0].mark, 36, 32);
        EXPECT_EQ(cond.header[1].first.text, "X-Custom");
        EXPECT_EQ(texts(cond.header[1].second), (std::vector<std::string>{"a", "b+"}));
        expect_mark(cond.header[1].second[1].mark, 36, 58);
        ASSERT_EQ(cond.query.size(), 2u);
        EXPECT_EQ(cond.query[0].first.text, "cmd");
        expect_mark(cond.query[0].first.mark, 37, 16);
        EXPECT_EQ(texts(cond.query[0].second), std::vector<std::string>{"^Sync$"});
        expect_mark(cond.query[0].second[0].mark, 37, 24);
        EXPECT_EQ(cond.query[1].first.text, "a%20b");  // raw, never decoded
        EXPECT_EQ(texts(cond.query[1].second), std::vector<std::string>{"x"});
    }

    ASSERT_EQ(c.locations.size(), 3u);
    {
        const location_section& l = c.locations[0];
        EXPECT_FALSE(l.ip_restrictions);
        ASSERT_EQ(l.request_blocking.size(), 1u);
        const rule_section& rule = l.request_blocking[0];
        EXPECT_EQ(rule.name, "monitor");  // a global rule's name, in another list
        EXPECT_TRUE(rule.negate);
        EXPECT_EQ(rule.act, action::not_found);
        EXPECT_FALSE(rule.mode);
        EXPECT_EQ(texts(rule.condition.user_agent), std::vector<std::string>{"Site24x7"});
        expect_mark(rule.condition.user_agent[0].mark, 46, 31);
    }
    {
        const location_section& l = c.locations[1];
        ASSERT_TRUE(l.ip_restrictions);
        const ip_restrictions_section& ip = *l.ip_restrictions;
        expect_mark(ip.mark, 51, 7);
        EXPECT_TRUE(ip.has_allow);
        EXPECT_EQ(texts(ip.allow), (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
        expect_mark(ip.allow[1].mark, 51, 31);
        EXPECT_EQ(texts(ip.deny), std::vector<std::string>{"127.0.0.2"});
        expect_mark(ip.deny[0].mark, 52, 14);
        EXPECT_EQ(ip.act, action::abort);
        EXPECT_EQ(ip.mode, rule_mode::report);
        EXPECT_TRUE(l.request_blocking.empty());
    }
    {
        const location_section& l = c.locations[2];
        ASSERT_TRUE(l.ip_restrictions);
        const ip_restrictions_section& ip = *l.ip_restrictions;
        EXPECT_FALSE(ip.has_allow);
        EXPECT_TRUE(ip.allow.empty());
        EXPECT_EQ(texts(ip.deny), (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
        EXPECT_EQ(ip.act, action::forbidden);  // the default
        EXPECT_FALSE(ip.mode);
        ASSERT_EQ(l.request_blocking.size(), 2u);
        EXPECT_EQ(l.request_blocking[0].name, "slow-down");
        expect_mark(l.request_blocking[0].mark, 59, 9);
        EXPECT_EQ(l.request_blocking[0].act, action::too_many_requests);
        EXPECT_EQ(texts(l.request_blocking[0].condition.method), std::vector<std::string>{"POST"});
        EXPECT_EQ(l.request_blocking[1].name, "outsiders");
        EXPECT_TRUE(l.request_blocking[1].negate);
        EXPECT_EQ(l.request_blocking[1].act, action::forbidden);
    }
}

TEST(LoadPolicy, EveryActionAndMode) {
    for (const auto& [word, act] :
         {std::pair{"allow", action::allow}, std::pair{"abort", action::abort},
          std::pair{"forbidden", action::forbidden}, std::pair{"not_found", action::not_found},
          std::pair{"unauthorized", action::unauthorized},
          std::pair{"too_many_requests", action::too_many_requests}}) {
        for (const auto& [mode_word, mode] :
             {std::pair{"enforce", rule_mode::enforce}, std::pair{"report", rule_mode::report}}) {
            const auto r = load(minimal(std::string("request_blocking:\n  - { name: r, if: { "
                                                    "method: GET }, action: ") +
                                        word + ", mode: " + mode_word + " }\n"));
            ASSERT_TRUE(r.config) << word << ": " << lines(r);
            ASSERT_EQ(r.config->request_blocking.size(), 1u);
            EXPECT_EQ(r.config->request_blocking[0].act, act) << word;
            EXPECT_EQ(r.config->request_blocking[0].mode, mode) << mode_word;
        }
    }
}

TEST(LoadPolicy, IpRestrictionsTakeEveryActionButAllow) {
    for (const auto& [word, act] :
         {std::pair{"abort", action::abort}, std::pair{"forbidden", action::forbidden},
          std::pair{"not_found", action::not_found},
          std::pair{"unauthorized", action::unauthorized},
          std::pair{"too_many_requests", action::too_many_requests}}) {
        const auto r = load(minimal(std::string("    ip_restrictions: { deny: [10.0.0.0/8], "
                                                "action: ") +
                                    word + " }\n"));
        ASSERT_TRUE(r.config) << word << ": " << lines(r);
        EXPECT_EQ(r.config->locations[0].ip_restrictions->act, act) << word;
    }
    EXPECT_EQ(lines(load(minimal("    ip_restrictions: { allow: [10.0.0.0/8], action: allow }\n"))),
              "test.yaml:13:53: error: invalid value 'allow' for 'action' (expected abort, "
              "forbidden, not_found, unauthorized or too_many_requests)\n");
}

TEST(LoadPolicy, ProxyProtocolOffIsTextNotABoolean) {
    for (const char* value : {"off", "\"off\"", "'off'"}) {
        std::string yaml = minimal();
        yaml.replace(yaml.find("    tls:"), 0, std::string("    proxy_protocol: ") + value + "\n");
        const auto r = load(yaml);
        ASSERT_TRUE(r.config) << value << ": " << lines(r);
        EXPECT_EQ(lines(r), "");
        EXPECT_EQ(r.config->listeners[0].proxy_protocol, proxy_protocol_mode::off);
    }
    for (const auto& [value, mode] :
         {std::pair{"v1", proxy_protocol_mode::v1}, std::pair{"v2", proxy_protocol_mode::v2},
          std::pair{"any", proxy_protocol_mode::any}}) {
        std::string yaml = minimal();
        yaml.replace(
            yaml.find("    tls:"), 0,
            std::string("    proxy_protocol: ") + value + "\n    trusted_proxies: [10.0.0.0/8]\n");
        const auto r = load(yaml);
        ASSERT_TRUE(r.config) << value << ": " << lines(r);
        EXPECT_EQ(lines(r), "");
        EXPECT_EQ(r.config->listeners[0].proxy_protocol, mode);
    }
}

TEST(LoadPolicy, ProxyProtocolWithoutTrustedProxiesWarns) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("    tls:"), 0, "    proxy_protocol: v2\n");
    const auto r = load(yaml);
    ASSERT_TRUE(r.config);
    EXPECT_EQ(lines(r),
              "test.yaml:4:21: warning: proxy_protocol is on but trusted_proxies is empty: every "
              "connection will be refused\n");
}

TEST(LoadPolicy, EmptyConditionBlocksWarnByPolarity) {
    const auto r = load(minimal(R"(request_blocking:
  - { name: a, if: {}, action: abort }
  - { name: b, if_not: {}, action: abort }
)"));
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(lines(r),
              "test.yaml:14:20: warning: empty condition block: the rule always fires\n"
              "test.yaml:15:24: warning: empty condition block: the rule never fires\n");
    EXPECT_FALSE(r.config->request_blocking[0].negate);
    EXPECT_TRUE(r.config->request_blocking[1].negate);
}

TEST(LoadPolicy, EmptyListSetsTheConditionButHoldsNothing) {
    const auto r =
        load(minimal("request_blocking:\n  - { name: a, if: { user_agent: [] }, "
                     "action: abort }\n"));
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(lines(r),
              "test.yaml:14:34: warning: condition 'user_agent' is an empty list: it never "
              "matches\n");
    const condition_block& cond = r.config->request_blocking[0].condition;
    EXPECT_TRUE(cond.has_user_agent);  // present: the rule can never match
    EXPECT_TRUE(cond.user_agent.empty());
    EXPECT_FALSE(cond.has_client_ip);
}

TEST(LoadPolicy, IfAndIfNotTogetherMakeAnExceptionAndBothAreChecked) {
    const auto bad = load(minimal(R"(request_blocking:
  - name: a
    if_not: { method: GET }
    if: { method: "G T" }
    action: abort
)"));
    EXPECT_FALSE(bad.config);
    EXPECT_EQ(lines(bad),
              "test.yaml:16:19: error: invalid method 'G T' (expected an HTTP token)\n");
    const auto r = load(minimal(R"(request_blocking:
  - name: a
    if_not: { client_ip: [10.0.0.0/8] }
    if: { method: PUT }
    action: abort
)"));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& rule = r.config->request_blocking[0];
    EXPECT_FALSE(rule.negate);
    EXPECT_EQ(rule.condition.method[0].text, "PUT");
    ASSERT_TRUE(rule.unless.has_value());
    EXPECT_EQ(rule.unless->client_ip[0].text, "10.0.0.0/8");
}

TEST(LoadPolicy, DuplicateRuleNamesAreReportedAtTheSecond) {
    const auto r = load(minimal(R"(    request_blocking:
      - { name: x, if: { method: GET }, action: abort }
      - { name: y, if: { method: GET }, action: abort }
      - { name: x, if: { method: PUT }, action: abort }
request_blocking:
  - { name: x, if: { method: GET }, action: abort }
)"));
    EXPECT_EQ(lines(r), "test.yaml:16:17: error: duplicate rule name 'x' (first at line 14)\n");
}

TEST(LoadPolicy, PresetsExpandIntoNamedRules) {
    const auto unknown = load(minimal("request_blocking:\n  - preset: nope\n"));
    EXPECT_FALSE(unknown.config);
    EXPECT_EQ(lines(unknown),
              "test.yaml:14:13: error: unknown preset 'nope' (expected exchange-shields or "
              "scanners)\n");
    const auto r = load(
        minimal("request_blocking:\n  - { preset: exchange-shields, admin_networks: [10.1.0.0/16], "
                "report: [m1-1] }\n  - preset: scanners\n"));
    ASSERT_TRUE(r.config) << lines(r);
    std::vector<std::string> names;
    for (const auto& rule : r.config->request_blocking) names.push_back(rule.name);
    EXPECT_EQ(names, (std::vector<std::string>{
                         "exchange-shields/proxylogon-cookies", "exchange-shields/m1-1",
                         "exchange-shields/admin-paths", "exchange-shields/powershell",
                         "exchange-shields/autodiscover-json", "scanners/user-agents"}));
    EXPECT_EQ(r.config->request_blocking[1].mode, rule_mode::report);
    EXPECT_FALSE(r.config->request_blocking[2].mode.has_value());
    EXPECT_EQ(r.config->request_blocking[2].unless->client_ip[0].text, "10.1.0.0/16");
    EXPECT_EQ(r.config->request_blocking[4].act, action::bad_request);
}

TEST(LoadPolicy, ConditionsCanBeSharedWithAliases) {
    const auto r = load(minimal(R"(    request_blocking:
      - { name: a, if_not: &clients { user_agent: ["^Apple-iPhone", Boxer] }, action: abort }
  - path: /ews
    upstream: exchange
    request_blocking:
      - { name: a, if_not: *clients, action: forbidden }
)"));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& ews = r.config->locations[1].request_blocking[0];
    EXPECT_EQ(texts(ews.condition.user_agent),
              (std::vector<std::string>{"^Apple-iPhone", "Boxer"}));
    // The alias refers to the anchored node: marks point where the patterns are written.
    expect_mark(ews.condition.user_agent[0].mark, 14, 52);
}

TEST(LoadFile, ResolvesRelativePathsAgainstTheFilesDirectory) {
    temp_dir dir;
    fs::create_directory(dir.path() / "certs");
    dir.write("certs/mail.pem", "x");
    dir.write("certs/mail.key", "x");
    std::string yaml = minimal("log: { access: ./logs/../access.log }\n");
    yaml.replace(yaml.find("mail.pem"), 8, "certs/mail.pem");
    yaml.replace(yaml.find("mail.key"), 8, "./certs//mail.key");
    const fs::path file = dir.write("mailgate.yaml", yaml);

    const auto r = load_file(file.string());
    ASSERT_TRUE(r.config) << lines(r);
    const auto& cert = r.config->listeners[0].tls.certificates[0];
    EXPECT_EQ(cert.cert, (dir.path() / "certs/mail.pem").string());
    EXPECT_EQ(cert.key, (dir.path() / "certs/mail.key").string());
    EXPECT_EQ(r.config->log.access, (dir.path() / "access.log").string());
}

TEST(LoadFile, AbsolutePathsStayAsWritten) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("mail.pem"), 8, files_dir + "/mail.pem");
    const auto r = load_string(yaml, "test.yaml", "/nonexistent");
    ASSERT_EQ(r.diags.items().size(), 1u) << lines(r);  // only the relative key is missing
    EXPECT_EQ(lines(r),
              "test.yaml:6:" + std::to_string(34 + files_dir.size() + 1) +
                  ": error: cannot read key file '/nonexistent/mail.key': No such file or "
                  "directory\n");
}

TEST(LoadFile, MissingFileIsOneDiagnostic) {
    const auto r = load_file("/nonexistent/mailgate.yaml");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r),
              "/nonexistent/mailgate.yaml:0:0: error: cannot read configuration file: "
              "/nonexistent/mailgate.yaml: No such file or directory\n");
}

TEST(LoadFile, DirectoryIsRefused) {
    const auto r = load_file(files_dir);
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r), files_dir + ":0:0: error: cannot read configuration file: " + files_dir +
                            ": Is a directory\n");
}

TEST(LoadFile, HugeFileIsRefusedBeforeParsing) {
    temp_dir dir;
    const fs::path file = dir.path() / "huge.yaml";
    {
        std::ofstream out(file, std::ios::binary);
        const std::string comment = "#" + std::string(1023, 'x') + "\n";
        for (int i = 0; i < 16 * 1024 + 1; ++i) out << comment;
    }
    const auto r = load_file(file.string());
    EXPECT_EQ(lines(r), file.string() + ":0:0: error: cannot read configuration file: " +
                            file.string() + ": larger than 16MiB\n");
}

TEST(LoadFile, UnreadableFileIsOneDiagnostic) {
    if (running_as_root()) GTEST_SKIP() << "root reads any file";
    temp_dir dir;
    const fs::path file = dir.write("mailgate.yaml", minimal());
    fs::permissions(file, fs::perms::none);
    const auto r = load_file(file.string());
    EXPECT_EQ(lines(r), file.string() + ":0:0: error: cannot read configuration file: " +
                            file.string() + ": Permission denied\n");
}

TEST(LoadString, EmptyBaseDirMeansTheCurrentDirectory) {
    const fs::path saved = fs::current_path();
    fs::current_path(files_dir);
    const auto r = load_string(minimal(), "test.yaml", "");
    fs::current_path(saved);
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(r.config->listeners[0].tls.certificates[0].cert, files_dir + "/mail.pem");
}

TEST(LoadString, SyntaxErrorIsOneDiagnosticAtTheParserPosition) {
    const auto r = load("server:\n  workers: 4\n   user: x\n");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r), "test.yaml:3:8: error: invalid YAML: illegal map value\n");
}

TEST(LoadString, TabIndentationIsASyntaxError) {
    const auto r = load("server:\n\tworkers: 4\n");
    ASSERT_EQ(r.diags.items().size(), 1u);
    EXPECT_EQ(r.diags.items()[0].mark.line, 2);
    EXPECT_TRUE(r.diags.items()[0].message.starts_with("invalid YAML: "));
}

TEST(LoadString, DeepNestingIsRefusedByTheParser) {
    const auto r = load("a: " + std::string(3000, '[') + std::string(3000, ']') + "\n");
    ASSERT_EQ(r.diags.items().size(), 1u);
    EXPECT_EQ(r.diags.items()[0].mark.line, 1);
    EXPECT_TRUE(r.diags.items()[0].message.starts_with("invalid YAML: nested more than "))
        << r.diags.items()[0].message;
}

TEST(LoadString, UnknownKeySuggestsTheNearestKnownKey) {
    const auto r = load(minimal("timeouts:\n  idel: 5s\n  upstream_conect: 1s\n  foo: 1s\n"));
    EXPECT_EQ(lines(r),
              "test.yaml:14:3: error: unknown key 'idel' (did you mean 'idle'?)\n"
              "test.yaml:15:3: error: unknown key 'upstream_conect' (did you mean "
              "'upstream_connect'?)\n"
              "test.yaml:16:3: error: unknown key 'foo'\n");
}

TEST(LoadString, UpstreamVerificationCannotBeTurnedOff) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("locations:"), 0, "    tls: { verify: false, insecure: true }\n");
    const auto r = load(yaml);
    EXPECT_EQ(lines(r),
              "test.yaml:10:12: error: unknown key 'verify'\n"
              "test.yaml:10:27: error: unknown key 'insecure'\n");
}

TEST(LoadString, MissingRequiredKeyPointsAtTheEnclosingMap) {
    const auto r = load(R"(listeners:
  - address: "0.0.0.0:443"
    tls: { profile: modern }
upstreams:
  - name: exchange
    servers: ["10.0.0.11:443"]
)");
    EXPECT_EQ(lines(r),
              "test.yaml:1:1: error: missing required key 'locations'\n"
              "test.yaml:2:5: error: missing required key 'name'\n"
              "test.yaml:3:10: error: missing required key 'certificates'\n");
}

TEST(LoadString, EmptyValuePointsAtItsKey) {
    const auto r = load(minimal("server:\n  user:\n  drain_timeout:\nlog:\n"));
    EXPECT_EQ(lines(r),
              "test.yaml:14:3: error: 'user' must be a string, got null\n"
              "test.yaml:15:3: error: 'drain_timeout' must be a duration, got null\n"
              "test.yaml:16:1: error: 'log' must be a map, got null\n");
}

TEST(LoadString, UnknownUpstreamIsReportedAtTheReference) {
    std::string yaml = minimal("  - path: /owa\n    upstream: owa\n");
    const auto r = load(yaml);
    EXPECT_EQ(lines(r), "test.yaml:14:15: error: unknown upstream 'owa'\n");
}

TEST(LoadString, UpstreamReferencesAreNotCheckedWhenAnUpstreamHasNoName) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("  - name: exchange"), 0, "  - servers: [\"10.0.0.9:443\"]\n");
    yaml.replace(yaml.find("upstream: exchange"), 18, "upstream: other");
    const auto r = load(yaml);
    EXPECT_EQ(lines(r), "test.yaml:8:5: error: missing required key 'name'\n");
}

TEST(LoadString, AllErrorsAreReportedInFileOrder) {
    // Locations first: the cross-reference check runs last but is reported in place.
    const auto r = load(R"(locations:
  - path: /
    upstream: nowhere
    timeouts: { idle: 0s }
server: { workers: many }
listeners:
  - name: public
    address: "0.0.0.0:99999"
    tls:
      certificates:
        - { cert: missing.pem, key: mail.key }
upstreams:
  - name: exchange
    servers: ["10.0.0.11"]
limits: { request_body: 10MB, header_count: -1 }
)");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r),
              "test.yaml:3:15: error: unknown upstream 'nowhere'\n"
              "test.yaml:4:23: error: 'idle' must be more than 0 and at most 24h, got '0s'\n"
              "test.yaml:5:20: error: 'workers' must be 'auto' or an integer from 1 to 256, "
              "got 'many'\n"
              "test.yaml:8:14: error: invalid listener address '0.0.0.0:99999': invalid port "
              "'99999' (expected 0 to 65535)\n"
              "test.yaml:11:19: error: cannot read certificate file '" +
                  files_dir +
                  "/missing.pem': No such file or directory\n"
                  "test.yaml:14:15: error: invalid upstream server '10.0.0.11': missing port\n"
                  "test.yaml:15:25: error: invalid size '10MB' for 'request_body': unknown unit "
                  "'MB' (sizes are binary: use MiB)\n"
                  "test.yaml:15:45: error: 'header_count' must be an integer from 1 to 10000, "
                  "got '-1'\n");
}

TEST(LoadString, HeadersReplaceOnlyTheKeysThatAreWritten) {
    const header_policy_section defaults;
    {
        const auto r = load(minimal("headers:\n  add: { X-Robots-Tag: none }\n"));
        ASSERT_TRUE(r.config) << lines(r);
        using header = std::pair<std::string, std::string>;
        EXPECT_EQ(r.config->headers.add, (std::vector<header>{{"X-Robots-Tag", "none"}}));
        EXPECT_EQ(r.config->headers.remove, defaults.remove);
    }
    {
        const auto r = load(minimal("headers:\n  remove: []\n"));
        ASSERT_TRUE(r.config) << lines(r);
        EXPECT_EQ(r.config->headers.add, defaults.add);
        EXPECT_TRUE(r.config->headers.remove.empty());
    }
    {
        const auto r = load(minimal("headers: { add: {} }\n"));
        ASSERT_TRUE(r.config) << lines(r);
        EXPECT_TRUE(r.config->headers.add.empty());
        EXPECT_EQ(r.config->headers.remove, defaults.remove);
    }
    {
        const auto r = load(minimal("headers: {}\n"));
        ASSERT_TRUE(r.config) << lines(r);
        EXPECT_EQ(r.config->headers.add, defaults.add);
        EXPECT_EQ(r.config->headers.remove, defaults.remove);
    }
}

TEST(LoadString, HeaderSetAndConflictingInstructions) {
    using header = std::pair<std::string, std::string>;
    {
        const auto r = load(minimal("headers:\n  set: { X-Frame-Options: DENY }\n"));
        ASSERT_TRUE(r.config) << lines(r);
        EXPECT_EQ(r.config->headers.set, (std::vector<header>{{"X-Frame-Options", "DENY"}}));
        // The default add list gives way to a name that is set.
        EXPECT_EQ(r.config->headers.add.size(), 2u);
    }
    // The default add list names X-Frame-Options: also setting it is ambiguous.
    const auto both = load(minimal(
        "headers:\n  add: { X-A: one }\n  set: { x-a: two }\n  remove: [X-Frame-Options]\n"));
    EXPECT_EQ(lines(both), "test.yaml:14:3: error: header 'x-a' is in both 'add' and 'set'\n");
    const auto removed = load(minimal("headers:\n  set: { Server: x }\n  remove: [Server]\n"));
    EXPECT_EQ(lines(removed),
              "test.yaml:14:3: error: header 'Server' is in both 'set' and 'remove'\n");
}

TEST(LoadString, LocationHeadersStartEmpty) {
    const auto r =
        load(minimal("    headers: { set: { Cache-Control: no-store }, remove: [X-A] }\n"));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& h = r.config->locations[0].headers;
    ASSERT_TRUE(h.has_value());
    EXPECT_TRUE(h->add.empty());
    EXPECT_EQ(h->remove, (std::vector<std::string>{"X-A"}));
    EXPECT_EQ(h->set.size(), 1u);
    EXPECT_FALSE(load(minimal()).config->locations[0].headers.has_value());
}

TEST(LoadString, RedirectListener) {
    const std::string redirect =
        "  - name: http\n    address: \"0.0.0.0:80\"\n    http_redirect: { port: 8443, host: "
        "mail.example.com }\n";
    auto yaml = minimal();
    yaml.insert(yaml.find("upstreams:"), redirect);
    const auto r = load(yaml);
    ASSERT_TRUE(r.config) << lines(r);
    const auto& l = r.config->listeners[1];
    ASSERT_TRUE(l.http_redirect.has_value());
    EXPECT_EQ(l.http_redirect->port, 8443u);
    EXPECT_EQ(l.http_redirect->host.value_or(""), "mail.example.com");

    auto with_tls = minimal();
    with_tls.insert(with_tls.find("upstreams:"),
                    "  - name: http\n    address: \"0.0.0.0:80\"\n    http_redirect: true\n"
                    "    proxy_protocol: v1\n    trusted_proxies: [10.0.0.0/8]\n"
                    "    tls: { certificates: [] }\n");
    EXPECT_EQ(lines(load(with_tls)),
              "test.yaml:10:21: error: proxy_protocol is not supported on an http_redirect "
              "listener\n"
              "test.yaml:12:5: error: a listener with http_redirect speaks plain HTTP and has no "
              "tls\n");
    auto bad_host = minimal();
    bad_host.insert(bad_host.find("upstreams:"),
                    "  - name: http\n    address: \"0.0.0.0:80\"\n    http_redirect: { host: "
                    "\"a/b\" }\n");
    EXPECT_EQ(lines(load(bad_host)), "test.yaml:9:28: error: invalid redirect host 'a/b'\n");
}

TEST(LoadString, HeaderValuesCannotSplitTheResponse) {
    const auto r = load(
        minimal("headers:\n  add:\n    X-A: \"x\\ny\"\n    X-B: \"x\\0y\"\n    X-C: \"x\\ty\"\n"));
    EXPECT_EQ(lines(r),
              "test.yaml:15:10: error: the value of header 'X-A' contains a control character "
              "(CR, LF, NUL, ...)\n"
              "test.yaml:16:10: error: the value of header 'X-B' contains a control character "
              "(CR, LF, NUL, ...)\n");
}

TEST(LoadString, ControlCharactersAreEscapedInMessages) {
    const auto r = load(minimal("log: { level: \"in\\x1b[31mfo\" }\n"));
    EXPECT_EQ(lines(r),
              "test.yaml:13:15: error: invalid value 'in\\x1b[31mfo' for 'level' (expected "
              "trace, debug, info, warn or error)\n");
}

TEST(LoadString, AnchorsAndAliasesWork) {
    std::string yaml = minimal(R"(  - path: /owa
    upstream: exchange
    timeouts: &long { idle: 1h, upstream_response: 1h }
  - path: /ews
    upstream: exchange
    timeouts: *long
)");
    const auto r = load(yaml);
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(r.config->locations[2].timeouts.idle, hours(1));
}

TEST(LoadString, BooleansFollowYaml12) {
    for (const char* value : {"true", "True", "TRUE", "false", "False", "FALSE"}) {
        std::string yaml = minimal();
        yaml.replace(yaml.find("upstreams:"), 0,
                     std::string("      hsts: { include_subdomains: ") + value + " }\n");
        const auto r = load(yaml);
        ASSERT_TRUE(r.config) << value << ": " << lines(r);
        EXPECT_EQ(r.config->listeners[0].tls.hsts.include_subdomains,
                  value[0] == 't' || value[0] == 'T');
    }
    std::string yaml = minimal();
    yaml.replace(yaml.find("upstreams:"), 0,
                 "      hsts: { max_age: 1y, include_subdomains: on }\n");
    EXPECT_EQ(lines(load(yaml)),
              "test.yaml:7:48: error: 'include_subdomains' must be true or false, got 'on'\n");
}

TEST(LoadString, WarningsDoNotPreventLoading) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("upstreams:"), 0, "      hsts: { max_age: 1d }\n");
    const auto r = load(yaml);
    ASSERT_TRUE(r.config);
    EXPECT_FALSE(r.diags.has_errors());
    EXPECT_EQ(lines(r),
              "test.yaml:7:24: warning: hsts max_age below 180d is not enough for an A+ rating\n");
    EXPECT_EQ(r.config->listeners[0].tls.hsts.max_age, hours(24));
}

TEST(LoadString, WorkersAcceptsTheWholeRange) {
    for (const char* n : {"1", "256", "auto"}) {
        const auto r = load(minimal(std::string("server: { workers: ") + n + " }\n"));
        EXPECT_TRUE(r.config) << n << ": " << lines(r);
    }
    for (const char* n : {"0", "257", "-1", "1.5", "0x10", "99999999999999999999"}) {
        const auto r = load(minimal(std::string("server: { workers: ") + n + " }\n"));
        EXPECT_FALSE(r.config) << n;
    }
}

TEST(LoadString, TimeoutsAcceptUpToOneDay) {
    EXPECT_TRUE(load(minimal("timeouts: { idle: 24h, send: 1ms }\n")).config);
    EXPECT_EQ(lines(load(minimal("timeouts: { idle: 86400001ms }\n"))),
              "test.yaml:13:19: error: 'idle' must be more than 0 and at most 24h, got "
              "'86400001ms'\n");
}

TEST(LoadString, HeadLimitsAcceptTheirWholeRange) {
    EXPECT_TRUE(load(minimal("limits: { request_line: 1KiB, request_headers: 1MiB }\n")).config);
    EXPECT_TRUE(load(minimal("limits: { request_line: 1024, request_headers: 1048576 }\n")).config);
    EXPECT_FALSE(load(minimal("limits: { request_line: 1023 }\n")).config);
    EXPECT_FALSE(load(minimal("limits: { request_headers: 1048577 }\n")).config);
    EXPECT_TRUE(load(minimal("limits: { request_body: 0, header_count: 10000 }\n")).config);
    EXPECT_FALSE(load(minimal("limits: { header_count: 10001 }\n")).config);
}

TEST(LoadString, ListenerAddressesInBothForms) {
    std::string yaml = minimal();
    yaml.replace(yaml.find("\"0.0.0.0:443\""), 13,
                 "[\"127.0.0.1:0\", \"[::1]:8443\", \"[::]:443\", \"[0:0::0]:8443\"]");
    const auto r = load(yaml);
    // [::1] is not [::] on the same port, but [0:0::0] is [::].
    EXPECT_EQ(lines(r), "");
    ASSERT_TRUE(r.config);
    EXPECT_EQ(r.config->listeners[0].addresses.size(), 4u);

    std::string dup = minimal();
    dup.replace(dup.find("\"0.0.0.0:443\""), 13, "[\"[::]:443\", \"[0:0::0]:443\"]");
    EXPECT_EQ(lines(load(dup)),
              "test.yaml:3:27: error: address '[0:0::0]:443' is already used by listener "
              "'public' at line 3\n");
}

TEST(LoadString, AccessLogMayBeCreatedInAWritableDirectory) {
    temp_dir dir;
    const std::string path = (dir.path() / "access.log").string();
    const auto r = load(minimal("log: { access: " + path + " }\n"));
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_EQ(r.config->log.access, path);
    EXPECT_FALSE(fs::exists(path));  // checked, not created
}

TEST(LoadString, AccessLogOffAndStdoutAreKeywords) {
    for (const char* v : {"off", "stdout"}) {
        const auto r = load(minimal(std::string("log: { access: ") + v + " }\n"));
        ASSERT_TRUE(r.config) << lines(r);
        EXPECT_EQ(r.config->log.access, v);
    }
}

TEST(LoadString, AccessLogInAReadOnlyDirectoryIsAnError) {
    if (running_as_root()) GTEST_SKIP() << "root writes anywhere";
    temp_dir dir;
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
    const std::string path = (dir.path() / "access.log").string();
    EXPECT_EQ(lines(load(minimal("log: { access: " + path + " }\n"))),
              "test.yaml:13:16: error: cannot write access log '" + path + "': directory '" +
                  dir.path().string() + "' is not writable\n");
}

TEST(LoadString, ReadOnlyAccessLogFileIsAnError) {
    if (running_as_root()) GTEST_SKIP() << "root writes anywhere";
    temp_dir dir;
    const fs::path path = dir.write("access.log", "");
    fs::permissions(path, fs::perms::owner_read);
    EXPECT_EQ(lines(load(minimal("log: { access: " + path.string() + " }\n"))),
              "test.yaml:13:16: error: cannot write access log '" + path.string() +
                  "': Permission denied\n");
}

TEST(LoadString, UnreadableCertificateIsAnError) {
    if (running_as_root()) GTEST_SKIP() << "root reads any file";
    temp_dir dir;
    const fs::path pem = dir.write("mail.pem", "x");
    dir.write("mail.key", "x");
    fs::permissions(pem, fs::perms::none);
    const auto r = load_string(minimal(), "test.yaml", dir.path().string());
    EXPECT_EQ(lines(r), "test.yaml:6:19: error: cannot read certificate file '" + pem.string() +
                            "': Permission denied\n");
}

}  // namespace
TEST(LoadString, DynamicLimitsAndAuthFailureLimitsRefuseBadInput) {
    const auto has = [](const load_result& r, std::string_view text) {
        return lines(r).find(text) != std::string::npos;
    };
    const auto empty = load(minimal("dynamic_ip_restrictions: { action: forbidden }\n"));
    EXPECT_FALSE(empty.config);
    EXPECT_TRUE(has(empty, "dynamic_ip_restrictions needs max_concurrent_requests or max_requests"))
        << lines(empty);
    const auto redis =
        load(minimal("dynamic_ip_restrictions: { max_concurrent_requests: 5, store: "
                     "\"redis://127.0.0.1:6379/0\" }\n"));
    ASSERT_TRUE(redis.config) << lines(redis);
    EXPECT_EQ(redis.config->dynamic_ip_restrictions->store, "redis://127.0.0.1:6379/0");
    EXPECT_FALSE(redis.config->dynamic_ip_restrictions->deny_on_store_error);
    EXPECT_EQ(redis.config->dynamic_ip_restrictions->store_timeout, std::chrono::milliseconds(100));
    // The top level may name only the store (the locations set limits); a location may not
    // name a store at all.
    const auto store_only = load(
        minimal("dynamic_ip_restrictions: { store: \"redis://[::1]:7000/3\", on_store_error: deny, "
                "store_timeout: 50ms }\n"));
    ASSERT_TRUE(store_only.config) << lines(store_only);
    EXPECT_FALSE(store_only.config->dynamic_ip_restrictions->has_limits);
    EXPECT_TRUE(store_only.config->dynamic_ip_restrictions->deny_on_store_error);
    EXPECT_EQ(store_only.config->dynamic_ip_restrictions->store_timeout,
              std::chrono::milliseconds(50));
    const auto bad_store = load(
        minimal("dynamic_ip_restrictions: { store: \"redis://h:99999\", on_store_error: maybe, "
                "store_timeout: 10s }\n"));
    EXPECT_FALSE(bad_store.config);
    EXPECT_TRUE(has(bad_store, "test.yaml:13:35: error: redis://h:99999: port must be"))
        << lines(bad_store);
    EXPECT_TRUE(has(bad_store, "invalid value 'maybe' for 'on_store_error'")) << lines(bad_store);
    EXPECT_TRUE(has(bad_store, "'store_timeout' must be between 1ms and 5s")) << lines(bad_store);
    const auto bad_auth = load(minimal(
        "anonymous_autodiscover: on\nauth_failure_limits: { max_failures_per_address: -1 }\n"));
    EXPECT_FALSE(bad_auth.config);
    EXPECT_TRUE(has(bad_auth, "'anonymous_autodiscover' must be a map")) << lines(bad_auth);
    EXPECT_TRUE(has(bad_auth, "'max_failures_per_address' must be an integer from 0 to 100000"))
        << lines(bad_auth);
    const auto off = load(minimal("anonymous_autodiscover: off\n"));
    ASSERT_TRUE(off.config) << lines(off);
    EXPECT_FALSE(off.config->anonymous_autodiscover);
    const auto defaults = load(minimal());
    ASSERT_TRUE(defaults.config);
    ASSERT_TRUE(defaults.config->anonymous_autodiscover);
    EXPECT_EQ(defaults.config->anonymous_autodiscover->max_requests, 30u);
    EXPECT_EQ(defaults.config->anonymous_autodiscover->per, std::chrono::minutes(1));
    const auto zero = load(minimal("auth_failure_limits: { max_failures: 0, per: 0s }\n"));
    EXPECT_FALSE(zero.config);
    EXPECT_TRUE(has(zero, "'max_failures' must be an integer from 1 to 1000")) << lines(zero);
    EXPECT_TRUE(has(zero, "'per' must be longer than 0")) << lines(zero);
    const auto ok =
        load(minimal("auth_failure_limits: { max_failures: 3, per: 10m, cool_off: 1h }\n"
                     "limits: { connections: 10, connections_per_ip: 2 }\n"));
    ASSERT_TRUE(ok.config) << lines(ok);
    EXPECT_EQ(ok.config->auth_failure_limits->max_failures, 3u);
    EXPECT_EQ(ok.config->limits.connections_per_ip, 2u);
}

}  // namespace mailgate::config
