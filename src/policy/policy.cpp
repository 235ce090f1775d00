#include "policy/policy.hpp"

#include <optional>

#include "policy/conditions.hpp"

namespace mailgate::policy {

namespace {

struct compiled_rule {
    condition_block_matcher when;
    std::optional<condition_block_matcher> unless;
    bool negate = false;
    std::uint32_t id = 0;

    bool fires(const request_facts& facts) const {
        return when.holds(facts) != negate && !(unless && unless->holds(facts));
    }
};

struct compiled_ip_restrictions {
    bool has_allow = false;
    net::cidr_set allow;
    net::cidr_set deny;
    std::uint32_t id = 0;

    // Deny wins: an address in both lists is refused, and with an allow list present an
    // address in neither is refused too.
    bool fires(const boost::asio::ip::address& a) const {
        return deny.contains(a) || (has_allow && !allow.contains(a));
    }
};

struct compiled_location {
    std::optional<compiled_ip_restrictions> ip_restrictions;
    std::vector<compiled_rule> rules;
};

}  // namespace

struct policy_set::impl {
    std::vector<compiled_rule> global;
    std::vector<compiled_location> locations;  // index i is cfg.locations[i]
};

policy_set::policy_set() : impl_(std::make_unique<impl>()) {}
policy_set::~policy_set() = default;

std::shared_ptr<const policy_set> policy_set::compile(const config::root& cfg,
                                                      config::diagnostics& diags) {
    std::shared_ptr<policy_set> set(new policy_set());
    auto& rules = set->rules_;
    bool ok = true;

    auto mode_of = [&](const std::optional<rule_mode>& m) {
        return cfg.policy_mode == rule_mode::report ? rule_mode::report
                                                    : m.value_or(rule_mode::enforce);
    };
    // "<location>/<rule>": "/servlet/ip_restrictions", and "/monitor-only" on "/", not "//".
    auto qualified = [](const std::string& prefix, std::string_view name) {
        return (prefix.ends_with('/') ? prefix : prefix + "/") + std::string(name);
    };
    auto add_info = [&](std::string name, action act, const std::optional<rule_mode>& m) {
        const auto id = static_cast<std::uint32_t>(rules.size());
        rules.push_back({std::move(name), act, mode_of(m), id});
        return id;
    };
    auto compile_list = [&](const std::vector<config::rule_section>& in, const std::string& prefix,
                            std::vector<compiled_rule>& out) {
        out.resize(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            const auto& r = in[i];
            out[i].negate = r.negate;
            out[i].id = add_info(qualified(prefix, r.name), r.act, r.mode);
            ok = out[i].when.compile(r.condition, diags) && ok;
            if (r.unless) ok = out[i].unless.emplace().compile(*r.unless, diags) && ok;
            for (const auto* block : {&r.condition, r.unless ? &*r.unless : nullptr})
                if (block && (block->has_uri || !block->malformed.empty()))
                    set->needs_decoded_uri_ = true;
        }
    };

    compile_list(cfg.request_blocking, "global", set->impl_->global);
    set->impl_->locations.resize(cfg.locations.size());
    for (std::size_t i = 0; i < cfg.locations.size(); ++i) {
        const auto& loc = cfg.locations[i];
        auto& out = set->impl_->locations[i];
        if (const auto& ipr = loc.ip_restrictions) {
            auto& c = out.ip_restrictions.emplace();
            c.has_allow = ipr->has_allow;
            c.id = add_info(qualified(loc.path, "ip_restrictions"), ipr->act, ipr->mode);
            ok = compile_cidrs(ipr->allow, c.allow, diags) && ok;
            ok = compile_cidrs(ipr->deny, c.deny, diags) && ok;
        }
        compile_list(loc.request_blocking, loc.path, out.rules);
    }
    if (!ok) return nullptr;
    return set;
}

void policy_set::evaluate(const request_facts& facts, std::size_t location_index,
                          verdict& out) const {
    out = verdict{};
    // True when the rule decides. A report-mode rule is noted and then treated as if it had
    // not fired, so a trial run shows every rule the request would have tripped on its way.
    auto fired = [&](std::uint32_t id) {
        const rule_info& info = rules_[id];
        if (info.mode == rule_mode::report) {
            if (out.reported_count < verdict::max_reported)
                out.reported[out.reported_count++] = &info;
            return false;
        }
        out.decided_by = &info;
        return true;
    };

    for (const auto& r : impl_->global) {
        if (r.fires(facts) && fired(r.id)) return;
    }
    // The index comes from the snapshot built from the same configuration; out of range
    // would be a bug there, and then only the global rules have had their say.
    if (location_index >= impl_->locations.size()) return;
    const auto& loc = impl_->locations[location_index];
    if (loc.ip_restrictions && loc.ip_restrictions->fires(facts.client) &&
        fired(loc.ip_restrictions->id))
        return;
    for (const auto& r : loc.rules) {
        if (r.fires(facts) && fired(r.id)) return;
    }
}

}  // namespace mailgate::policy
