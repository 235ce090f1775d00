#pragma once
// The compiled, immutable configuration. Built once per load (off the request path) by
// each module's compile step; workers read it through snapshot_holder, and a request
// keeps the snapshot it started with until it ends.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"
#include "http/head_scanner.hpp"
#include "http/header_policy.hpp"
#include "net/cidr_set.hpp"
#include "policy/policy.hpp"
#include "policy/rate_limiter.hpp"

namespace mailgate::runtime {

using duration = std::chrono::milliseconds;

struct compiled_listener {
    std::string name;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;
    std::shared_ptr<boost::asio::ssl::context> tls;  // null on a redirect listener
    std::vector<std::string> certificates;           // one description per certificate, for the log
    std::string hsts;  // "Strict-Transport-Security: ...\r\n" or empty
    // Redirect listener: plain HTTP, every request answered 301 to https://host[:port].
    std::optional<config::http_redirect_settings> http_redirect;
    config::proxy_protocol_mode proxy_protocol = config::proxy_protocol_mode::off;
    net::cidr_set trusted_proxies;  // PROXY headers and X-Forwarded-For believed only from these
};

struct upstream_server {
    std::string label;  // as configured, for logs
    boost::asio::ip::tcp::endpoint endpoint;
};

struct compiled_upstream {
    std::string name;
    std::vector<upstream_server> servers;
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::string server_name;            // SNI and verified name
    bool insecure_skip_verify = false;  // logged as a warning at start and on reload
    std::string external_host;          // for X-MS-Location on 451 (empty: the request's Host)
    std::vector<std::string> internal_names;  // lower case: server_name and the servers' hosts
    unsigned max_idle = 64;
    duration idle_timeout{};
};

// dynamic_ip_restrictions, compiled: the limits, what a denial does, who is exempt.
struct compiled_dynamic_ip {
    policy::limit_settings limits;
    config::action act = config::action::too_many_requests;
    config::rule_mode mode = config::rule_mode::enforce;
    net::cidr_set exempt;
    std::string rule;  // as logged: "dynamic_ip_restrictions" or "<path>/dynamic_ip_restrictions"
    std::uint32_t scope = 0;  // the limiter's key scope: 0 global, else from the location path
};

// auth_failure_limits, compiled.
struct compiled_auth_failures {
    std::uint64_t max_failures = 4;
    std::uint64_t max_failures_per_address = 20;  // 0: addresses not counted
    std::chrono::nanoseconds per{}, cool_off{};
    config::rule_mode mode = config::rule_mode::enforce;
    std::string rule;  // "auth_failure_limits" or "<path>/auth_failure_limits"
    std::uint32_t scope = 0;
};

struct compiled_location {
    std::string prefix;  // normalized (lower case, no trailing slash except "/")
    config::location_kind kind = config::location_kind::generic;
    std::size_t index = 0;  // position in the configuration file (the policy's location index)
    std::size_t upstream = 0;
    duration idle{};
    duration upstream_response{};
    std::uint64_t request_body = 0;
    http::header_policy headers;  // the global policy with this location's own on top
    std::shared_ptr<const compiled_dynamic_ip> dynamic_ip;      // its own, else the global, or null
    std::shared_ptr<const compiled_dynamic_ip> dynamic_device;  // keyed by ActiveSync device ID
    std::shared_ptr<const compiled_auth_failures> auth_failures;  // its own, else the global
};

struct timeout_set {
    duration tls_handshake{}, request_header{}, idle{}, upstream_connect{}, send{};
    std::uint64_t body_min_rate = 0;  // bytes/s after a grace of request_header; 0: off
};

struct snapshot {
    std::vector<compiled_listener> listeners;
    std::vector<compiled_upstream> upstreams;
    std::vector<compiled_location> locations;  // longest prefix first
    std::shared_ptr<const policy::policy_set> policy;
    http::header_policy headers;  // global: on replies made before a location is chosen
    http::head_limits head_limits;
    std::uint64_t request_body_ceiling = 0;  // largest request_body of any location
    std::uint64_t max_connections = 50000;
    std::uint64_t max_connections_per_ip = 200;
    // dynamic_ip_restrictions' store: "local" or a redis:// URL (fixed at start), and what a
    // request gets when Redis does not answer within store_timeout.
    // R26, on /autodiscover/autodiscover.json requests without credentials; null when off.
    std::shared_ptr<const compiled_dynamic_ip> anonymous_autodiscover;
    std::string limit_store = "local";
    bool deny_on_store_error = false;
    duration store_timeout{std::chrono::milliseconds(100)};
    timeout_set timeouts;
    duration drain_timeout{};
    unsigned workers = 1;
    std::optional<std::string> user;  // drop privileges to this user after binding
    std::optional<boost::asio::ip::tcp::endpoint> admin;
    std::string access_log;  // "stdout" | "off" | path
    config::log_level log_level = config::log_level::info;
    bool log_user_names = false;
    // Files whose change reloads the configuration, as SIGHUP does (device_id_file lists).
    std::vector<std::string>
        watched_files;  // else users appear as a salted hash in auth failure records

    // Longest prefix on a path segment boundary: "/owa" serves "/owa" and "/owa/x" but not
    // "/owax" (as an IIS application would). nullptr when nothing matches.
    const compiled_location* route(std::string_view normalized_path) const;
};

// Compiles a loaded configuration. Returns nullptr when `diags` gained errors.
std::shared_ptr<const snapshot> build_snapshot(const config::root& cfg, config::diagnostics& diags);

// The current snapshot, swapped atomically on reload.
class snapshot_holder {
public:
    std::shared_ptr<const snapshot> load() const {
        return current_.load(std::memory_order_acquire);
    }
    void store(std::shared_ptr<const snapshot> s) {
        current_.store(std::move(s), std::memory_order_release);
    }

private:
    std::atomic<std::shared_ptr<const snapshot>> current_;
};

}  // namespace mailgate::runtime
