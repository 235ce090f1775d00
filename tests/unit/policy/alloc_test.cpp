// evaluate() must not allocate: the global operator new is replaced in this test binary and
// counts while `counting` is set. RE2 builds its DFA lazily, so every request is evaluated
// once before counting starts; after that, the same requests must cost no allocation.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "eas/query_decoder.hpp"
#include "policy/policy.hpp"
#include "policy_test_util.hpp"

#include "../support/count_allocations.hpp"

namespace {

using namespace mailgate;
using namespace mailgate::policy;
using namespace mailgate::policy::test;

config::root with_rules(std::vector<config::rule_section> rules) {
    config::root cfg;
    cfg.request_blocking = std::move(rules);
    cfg.locations.push_back(location("/"));
    return cfg;
}

TEST(Allocation, TheCounterSeesAllocations) {
    allocations = 0;
    counting = true;
    auto* s = new std::string(100, 'x');  // the object and its buffer
    counting = false;
    delete s;
    EXPECT_EQ(allocations.load(), 2);
}

// RE2 allocates inside libre2.so; seeing its lazy DFA construction here shows that the
// replacement reaches into the library, so the zero below means something.
TEST(Allocation, TheCounterSeesRe2BuildingItsDfa) {
    auto c = compile(
        with_rules({rule_if("r", block{}.user_agent({"^Apple-", "Boxer"}), action::abort)}));
    ASSERT_TRUE(c.set);
    const auto r = request{}.ua("Apple-iPhone");
    const auto f = r.facts();
    verdict v;
    allocations = 0;
    counting = true;
    c.set->evaluate(f, 0, v);
    counting = false;
    EXPECT_GT(allocations.load(), 0);
}

TEST(Allocation, EvaluateAllocatesNothing) {
    config::root cfg;
    cfg.request_blocking = {
        rule_if("shield", block{}.query("Cmd", {"^(?:Search|ItemOperations)$"}).method({"POST"}),
                action::forbidden, rule_mode::report),
        rule_if("scanner", block{}.user_agent({"sqlmap", "nikto", "masscan"}), action::abort)};
    auto loc = location(
        "/Microsoft-Server-ActiveSync",
        {rule_if("internal", block{}.client_ip({"10.0.0.0/8", "fd00::/8"}), action::allow),
         rule_if("bearer", block{}.header("Authorization", {"^Bearer "}), action::unauthorized),
         rule_if_not("approved",
                     block{}.user_agent({"^Apple-iPhone", "^Apple-iPad", "^iOS/", "Boxer"}),
                     action::abort)});
    loc.ip_restrictions = ipr{}.deny({"192.0.2.0/24", "2001:db8::/32"});
    cfg.locations = {location("/"), loc};
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);

    std::vector<request> requests;
    requests.push_back(request{}
                           .ua("Apple-iPhone15C2/2101.73")
                           .q("Cmd=Sync&User=u&DeviceId=d")
                           .with_method("POST")
                           .header("Authorization", "Basic dTpw"));
    requests.push_back(request{}.ua("Android-Mail/2023").q("Cmd=Search").with_method("POST"));
    requests.push_back(request{}.ua("sqlmap/1.7").from("2001:db8::1"));
    requests.push_back(request{}.from("::ffff:10.1.2.3"));
    requests.push_back(request{}.header("authorization", "Bearer x").header("X-A", "1"));
    requests.push_back(request{}.from("2001:db9::1").ua("Boxer"));

    verdict v;
    for (const auto& r : requests) {
        for (std::size_t loc_index = 0; loc_index < 2; ++loc_index)
            c.set->evaluate(r.facts(), loc_index, v);
    }
    // The facts are built outside the counted region (request_facts holds an address, which
    // does not allocate, but keep the measurement to evaluate() alone).
    std::vector<request_facts> facts;
    for (const auto& r : requests) facts.push_back(r.facts());

    allocations = 0;
    counting = true;
    int decided = 0;
    for (int round = 0; round < 100; ++round) {
        for (const auto& f : facts) {
            for (std::size_t loc_index = 0; loc_index < 2; ++loc_index) {
                c.set->evaluate(f, loc_index, v);
                decided += v.decided_by != nullptr;
            }
        }
    }
    counting = false;
    EXPECT_EQ(allocations.load(), 0);
    EXPECT_GT(decided, 0);
}

// `eas:` conditions: patterns on the record and the device list (ASCII case-insensitive
// lookups of both forms) allocate nothing either.
TEST(Allocation, EasConditionsAllocateNothing) {
    const std::string list_path =
        std::string(MAILGATE_CORPUS_DIR) + "/config/files/devices.txt";  // lists V3 and V4
    config::condition_block blocked;
    blocked.eas.emplace();
    blocked.eas->device_id_file = list_path;
    config::condition_block shield;
    shield.eas.emplace();
    shield.eas->cmd = list({"^(?:Search|ItemOperations)$"});
    shield.eas->has_cmd = true;
    shield.eas->device_id = list({"^appl", "^4e696e65"});
    shield.eas->has_device_id = true;
    config::condition_block approved;
    approved.eas.emplace();
    approved.eas->device_type = list({"^(?:iPhone|iPad|Android)$"});
    approved.eas->has_device_type = true;
    approved.eas->user = list({"^CONTOSO\\\\", "@contoso\\.com$"});
    approved.eas->has_user = true;
    approved.eas->protocol = list({"^1[46]\\."});
    approved.eas->has_protocol = true;
    config::root cfg;
    auto loc = location("/Microsoft-Server-ActiveSync",
                        {rule_if("blocked", blocked, action::forbidden),
                         rule_if("shield", shield, action::forbidden, rule_mode::report),
                         rule_if_not("approved", approved, action::abort)});
    loc.kind = config::location_kind::activesync;
    cfg.locations = {loc};
    auto c = compile(cfg);
    ASSERT_TRUE(c.set);

    const char* queries[] = {
        "jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==",              // listed
        "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y",  // listed, binary
        "oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==",
        "Cmd=Search&User=CONTOSO%5Cjdoe&DeviceId=ApplF17XYZ&DeviceType=iPhone",
        "Cmd=Sync&User=mallory&DeviceId=androidc195792594&DeviceType=Android",
    };
    std::vector<std::unique_ptr<eas::eas_facts>> records;
    std::vector<request> requests;
    for (const char* q : queries) {
        records.push_back(std::make_unique<eas::eas_facts>());
        ASSERT_EQ(
            eas::decode({q, "14.1", "", "Basic Q09OVE9TT1xqZG9lOmh1bnRlcjI="}, *records.back()),
            eas::decode_error::ok);
        requests.push_back(request{}.with_method("POST").q(q));
    }
    std::vector<request_facts> facts;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        facts.push_back(requests[i].facts());
        facts.back().eas = records[i].get();
    }
    verdict v;
    for (const auto& f : facts) c.set->evaluate(f, 0, v);

    allocations = 0;
    counting = true;
    int decided = 0;
    for (int round = 0; round < 100; ++round) {
        for (const auto& f : facts) {
            c.set->evaluate(f, 0, v);
            decided += v.decided_by != nullptr;
        }
    }
    counting = false;
    EXPECT_EQ(allocations.load(), 0);
    EXPECT_EQ(decided, 300);  // the two listed devices and mallory
}

}  // namespace
