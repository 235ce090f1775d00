#pragma once
// Configurations built as structs, so these tests do not depend on the YAML loader.
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"
#include "policy/policy.hpp"

namespace mailgate::policy::test {

inline config::marked_string ms(std::string text, int line = 0, int column = 0) {
    return {std::move(text), {line, column}};
}

inline std::vector<config::marked_string> list(std::initializer_list<const char*> items) {
    std::vector<config::marked_string> out;
    for (const char* i : items) out.push_back(ms(i));
    return out;
}

// Condition block builders: each sets the value and marks the key as written.
struct block {
    config::condition_block b;
    block& user_agent(std::initializer_list<const char*> v) {
        b.user_agent = list(v);
        b.has_user_agent = true;
        return *this;
    }
    block& client_ip(std::initializer_list<const char*> v) {
        b.client_ip = list(v);
        b.has_client_ip = true;
        return *this;
    }
    block& method(std::initializer_list<const char*> v) {
        b.method = list(v);
        b.has_method = true;
        return *this;
    }
    block& header(const char* name, std::initializer_list<const char*> v) {
        b.header.emplace_back(ms(name), list(v));
        return *this;
    }
    block& query(const char* name, std::initializer_list<const char*> v) {
        b.query.emplace_back(ms(name), list(v));
        return *this;
    }
    operator config::condition_block() const { return b; }
};

inline config::rule_section rule_if(std::string name, config::condition_block b, action act,
                                    std::optional<rule_mode> mode = std::nullopt) {
    config::rule_section r;
    r.name = std::move(name);
    r.condition = std::move(b);
    r.negate = false;
    r.act = act;
    r.mode = mode;
    return r;
}

inline config::rule_section rule_if_not(std::string name, config::condition_block b, action act,
                                        std::optional<rule_mode> mode = std::nullopt) {
    auto r = rule_if(std::move(name), std::move(b), act, mode);
    r.negate = true;
    return r;
}

inline config::location_section location(std::string path,
                                         std::vector<config::rule_section> rules = {}) {
    config::location_section l;
    l.path = std::move(path);
    l.upstream = "exchange";
    l.request_blocking = std::move(rules);
    return l;
}

struct ipr {
    config::ip_restrictions_section s;
    ipr& allow(std::initializer_list<const char*> v) {
        s.allow = list(v);
        s.has_allow = true;
        return *this;
    }
    ipr& deny(std::initializer_list<const char*> v) {
        s.deny = list(v);
        return *this;
    }
    ipr& act(action a) {
        s.act = a;
        return *this;
    }
    ipr& mode(rule_mode m) {
        s.mode = m;
        return *this;
    }
    operator config::ip_restrictions_section() const { return s; }
};

// A request. Views point into the members, so keep it alive while evaluating.
struct request {
    boost::asio::ip::address client = boost::asio::ip::make_address("192.0.2.1");
    std::string method = "GET";
    std::string user_agent;
    std::string query;
    boost::beast::http::fields fields;
    bool with_fields = true;

    request& from(const char* ip) {
        client = boost::asio::ip::make_address(ip);
        return *this;
    }
    request& with_method(std::string m) {
        method = std::move(m);
        return *this;
    }
    request& ua(std::string u) {
        user_agent = std::move(u);
        return *this;
    }
    request& q(std::string raw) {
        query = std::move(raw);
        return *this;
    }
    request& header(const char* name, const char* value) {
        fields.insert(name, value);
        return *this;
    }

    request_facts facts() const {
        request_facts f;
        f.client = client;
        f.method = method;
        f.user_agent = user_agent;
        f.query = query;
        f.fields = with_fields ? &fields : nullptr;
        return f;
    }
};

struct compiled {
    std::shared_ptr<const policy_set> set;
    config::diagnostics diags;
};

inline compiled compile(const config::root& cfg) {
    compiled c;
    c.set = policy_set::compile(cfg, c.diags);
    return c;
}

}  // namespace mailgate::policy::test
