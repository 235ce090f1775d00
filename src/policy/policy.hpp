#pragma once
// The request policy of one configuration, compiled: the global request_blocking list,
// then per location its ip_restrictions and its request_blocking list. Evaluating a
// request allocates nothing and takes no lock.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::eas {
struct eas_facts;
}  // namespace mailgate::eas

namespace mailgate::policy {

using config::action;
using config::rule_mode;

// What the phases before the policy learned about the request. Views stay valid for the
// duration of evaluate().
struct request_facts {
    boost::asio::ip::address client;  // resolved (PROXY protocol / trusted XFF), v4-mapped unmapped
    std::string_view method;
    std::string_view user_agent;                         // empty when the header is absent
    std::string_view query;                              // raw, after '?', never decoded
    const boost::beast::http::fields* fields = nullptr;  // for header conditions
    // The decoded ActiveSync request, on locations of kind activesync; `eas:` conditions
    // read it, and see empty values when it is null.
    const eas::eas_facts* eas = nullptr;
    std::string_view path;         // normalized (lower case, dot segments resolved)
    std::string_view decoded_uri;  // see condition_block::uri; set when needs_decoded_uri()
};

// One rule (or a location's ip_restrictions) as it appears in logs and counters.
struct rule_info {
    std::string
        name;  // "global/<rule>", "<location path>/<rule>", "<location path>/ip_restrictions"
    action act = action::forbidden;
    rule_mode mode = rule_mode::enforce;  // after policy_mode is applied
    std::uint32_t id = 0;                 // index into policy_set::rules()
};

struct verdict {
    // The enforce-mode rule that decided, or nullptr when none fired (the request passes).
    // When it is an `allow` rule the request passes too, and evaluation stopped there.
    const rule_info* decided_by = nullptr;
    // Report-mode rules that fired before the decision (first few only).
    static constexpr std::size_t max_reported = 4;
    std::array<const rule_info*, max_reported> reported{};
    std::uint8_t reported_count = 0;

    action outcome() const { return decided_by ? decided_by->act : action::allow; }
};

class policy_set {
public:
    // Compiles every rule of `cfg`; regex and CIDR errors go to `diags` at their marks.
    // Returns nullptr when there were errors. Location i of the result is cfg.locations[i].
    static std::shared_ptr<const policy_set> compile(const config::root& cfg,
                                                     config::diagnostics& diags);

    // Global list, then location `location_index`'s ip_restrictions and list. The first
    // enforce-mode rule that fires decides; `allow` ends evaluation (the request passes,
    // including the location's rules: an explicit allow is an explicit allow).
    void evaluate(const request_facts& facts, std::size_t location_index, verdict& out) const;

    const std::vector<rule_info>& rules() const { return rules_; }
    // Whether any rule reads request_facts::decoded_uri (so the caller computes it).
    bool needs_decoded_uri() const { return needs_decoded_uri_; }

    ~policy_set();
    policy_set(const policy_set&) = delete;
    policy_set& operator=(const policy_set&) = delete;

private:
    policy_set();
    struct impl;
    std::unique_ptr<impl> impl_;
    std::vector<rule_info> rules_;
    bool needs_decoded_uri_ = false;
};

// The decoded request URI of condition_block::uri, from the normalized path and the raw
// query: every %xx decoded, twice, then lower case; '+' stays '+'.
std::string decode_uri(std::string_view normalized_path, std::string_view raw_query);

// R22: true for a request to /autodiscover/autodiscover.json (or below it) that has neither
// allowed shape: `?Email=addr[&Protocol=word][&RedirectCount=nn]` (each key once, nothing
// else) or `/v1.0/addr?Protocol=word`. False for any other path.
bool autodiscover_json_malformed(std::string_view normalized_path, std::string_view raw_query);

std::string_view to_string(action a);
std::string_view to_string(rule_mode m);
// The HTTP status an action answers with; 0 for allow and abort.
int status_of(action a);

}  // namespace mailgate::policy
