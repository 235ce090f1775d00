#pragma once
// The per-request context (Pingora's CTX): what the phases learned and decided, and
// what the access log record is made of.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <boost/asio/ip/address.hpp>

#include "http/request_head.hpp"
#include "policy/policy.hpp"
#include "proxy/limit_store.hpp"
#include "runtime/snapshot.hpp"

namespace mailgate::http {
using response_parser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
}

namespace mailgate::proxy {

struct exchange {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
    http::request_parser parser;
    http::request_info info;
    std::string normalized_path;
    bool head_parsed = false;
    const runtime::compiled_location* location = nullptr;
    boost::asio::ip::address client;  // resolved: PROXY protocol, then trusted X-Forwarded-For
    std::string client_text;
    policy::verdict verdict;
    const eas::eas_facts* eas = nullptr;  // decoded, on an ActiveSync location
    bool rpc_channel = false;             // RPC_IN_DATA / RPC_OUT_DATA
    limiter_slot slot;                    // dynamic_ip_restrictions concurrency
    limiter_slot device_slot;             // dynamic_device_restrictions concurrency
    std::uint32_t retry_after = 0;        // seconds, on a 429 of mailgate's own
    std::string extra_fields;             // more header lines on mailgate's own reply
    // auth_failure_limits: the normalized user of this request's credentials, its limiter
    // key, and what the log shows of it (a salted hash unless log.user_names).
    std::string auth_user;
    policy::rate_limiter::key auth_key{};
    std::string auth_user_logged;
    std::string_view auth_outcome;    // "failed" | "succeeded" | "throttled"
    bool store_error = false;         // the shared limit store did not answer in time
    bool forms_login = false;         // an OWA logon form: failure is a redirect to logon.aspx
    std::size_t prefetched_body = 0;  // body bytes read ahead into the relay buffer
    limiter_slot anonymous_slot;      // anonymous_autodiscover concurrency (if configured)

    int status = 0;  // what the client was answered, 0 = nothing
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::string upstream;  // server label
    double upstream_ms = -1;
    std::string_view rule;    // name of the rule that decided (or the first that reported)
    std::string_view action;  // that rule's action
    std::string_view mode;    // that rule's mode
    std::string error;        // why mailgate answered or closed
};

}  // namespace mailgate::proxy
