#include "policy/conditions.hpp"

#include <algorithm>

#include <boost/beast/http/fields.hpp>

namespace mailgate::policy {

namespace {

bool compile_keyed(
    const std::vector<std::pair<config::marked_string, std::vector<config::marked_string>>>& in,
    auto& out, config::diagnostics& diags) {
    bool ok = true;
    out.resize(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i].key = in[i].first.text;
        ok = out[i].patterns.compile(in[i].second, diags) && ok;
    }
    return ok;
}

}  // namespace

bool compile_cidrs(const std::vector<config::marked_string>& in, net::cidr_set& out,
                   config::diagnostics& diags) {
    bool ok = true;
    for (const auto& c : in) {
        std::string error;
        if (!out.add(c.text, error)) {
            diags.error(c.mark, "invalid CIDR '" + c.text + "': " + error);
            ok = false;
        }
    }
    out.finalize();
    return ok;
}

bool condition_block_matcher::compile(const config::condition_block& block,
                                      config::diagnostics& diags) {
    bool ok = true;

    // In the order of the schema, so that errors come out roughly in the order written.
    has_user_agent_ = block.has_user_agent;
    ok = user_agent_.compile(block.user_agent, diags) && ok;

    has_client_ip_ = block.has_client_ip;
    ok = compile_cidrs(block.client_ip, client_ip_, diags) && ok;

    has_method_ = block.has_method;
    for (const auto& m : block.method) methods_.push_back(m.text);

    ok = compile_keyed(block.header, headers_, diags) && ok;
    ok = compile_keyed(block.query, query_, diags) && ok;
    return ok;
}

// Cheapest conditions first: the block is an AND, so the first that fails settles it.
bool condition_block_matcher::holds(const request_facts& facts) const {
    if (has_method_ && std::find(methods_.begin(), methods_.end(), facts.method) == methods_.end())
        return false;

    if (has_client_ip_ && !client_ip_.contains(facts.client)) return false;

    if (has_user_agent_ && !user_agent_.match(facts.user_agent)) return false;

    for (const auto& h : headers_) {
        bool any = false, seen = false;
        if (facts.fields) {
            // Not equal_range: in Beast 1.81 it spans every field between the first and the
            // last match, fields of other names included.
            for (auto it = facts.fields->begin(); it != facts.fields->end() && !any; ++it) {
                if (!boost::beast::iequals(it->name_string(), h.key)) continue;
                seen = true;
                const auto v = it->value();
                any = h.patterns.match(std::string_view(v.data(), v.size()));
            }
        }
        if (!seen) any = h.patterns.match(std::string_view{});
        if (!any) return false;
    }

    for (const auto& q : query_) {
        if (!any_query_value(facts.query, q.key,
                             [&](std::string_view v) { return q.patterns.match(v); }))
            return false;
    }
    return true;
}

}  // namespace mailgate::policy
