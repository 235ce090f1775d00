// The policy compiled from YAML through the real loader: the keys reach the policy, and the
// marks the loader records are where the policy reports bad regexes and CIDRs.
#include <gtest/gtest.h>

#include <string>

#include "config/load.hpp"
#include "policy/policy.hpp"
#include "policy_test_util.hpp"

namespace {

using namespace mailgate;
using namespace mailgate::policy;
using namespace mailgate::policy::test;

const std::string files_dir = std::string(MAILGATE_CORPUS_DIR) + "/config/files";

const std::string head = R"(listeners:
  - name: public
    address: "0.0.0.0:443"
    tls:
      certificates:
        - { cert: mail.pem, key: mail.key }
upstreams:
  - name: exchange
    servers: ["10.0.0.11:443"]
)";

std::string dump(const config::diagnostics& d) {
    std::string out;
    for (const auto& i : d.items()) out += i.to_string() + "\n";
    return out;
}

TEST(LoadedConfig, TheBlogExampleDecidesAsThePostDoes) {
    const auto loaded = config::load_string(head + R"(locations:
  - path: /
    upstream: exchange
    request_blocking:
      - name: monitor-only
        if_not: { user_agent: ["Site24x7"] }
        action: abort
  - path: /Microsoft-Server-ActiveSync
    upstream: exchange
    request_blocking:
      - name: approved-mail-clients
        if_not: { user_agent: ["^Apple-iPhone", "^Apple-iPad", "^iOS/", "Boxer"] }
        action: abort
  - path: /servlet
    upstream: exchange
    ip_restrictions: { allow: ["127.0.0.1/32", "::1/128"], action: forbidden }
)",
                                            "blog.yaml", files_dir);
    ASSERT_TRUE(loaded.config) << dump(loaded.diags);
    config::diagnostics diags("blog.yaml");
    const auto set = policy_set::compile(*loaded.config, diags);
    ASSERT_TRUE(set) << dump(diags);
    ASSERT_EQ(set->rules().size(), 3u);
    EXPECT_EQ(set->rules()[0].name, "/monitor-only");
    EXPECT_EQ(set->rules()[1].name, "/Microsoft-Server-ActiveSync/approved-mail-clients");
    EXPECT_EQ(set->rules()[2].name, "/servlet/ip_restrictions");

    auto outcome = [&](const request& r, std::size_t loc) {
        verdict v;
        set->evaluate(r.facts(), loc, v);
        return v.outcome();
    };
    EXPECT_EQ(outcome(request{}.ua("Site24x7"), 0), action::allow);
    EXPECT_EQ(outcome(request{}.ua("curl/8.0"), 0), action::abort);
    EXPECT_EQ(outcome(request{}.ua("Apple-iPhone15C2/2101.73"), 1), action::allow);
    EXPECT_EQ(outcome(request{}.ua("Android-Mail/2023"), 1), action::abort);
    EXPECT_EQ(outcome(request{}.from("::1"), 2), action::allow);
    EXPECT_EQ(outcome(request{}.from("127.0.0.2"), 2), action::forbidden);
}

TEST(LoadedConfig, BadPatternsAndCidrsAreReportedWhereTheyAreWritten) {
    const auto loaded = config::load_string(head + R"(request_blocking:
  - name: bad
    if: { user_agent: ["ok", "(x"], client_ip: ["10.0.0.1/8"] }
    action: abort
locations:
  - path: /
    upstream: exchange
    ip_restrictions:
      deny: ["::1/200"]
)",
                                            "bad.yaml", files_dir);
    ASSERT_TRUE(loaded.config) << dump(loaded.diags);
    config::diagnostics diags("bad.yaml");
    EXPECT_FALSE(policy_set::compile(*loaded.config, diags));
    EXPECT_EQ(dump(diags),
              "bad.yaml:12:30: error: invalid regex '(x': missing ): (x\n"
              "bad.yaml:12:49: error: invalid CIDR '10.0.0.1/8': host bits set (the network is "
              "10.0.0.0/8)\n"
              "bad.yaml:18:14: error: invalid CIDR '::1/200': prefix length must be a number from "
              "0 to 128\n");
}

}  // namespace
