#include "runtime/snapshot.hpp"

#include <algorithm>
#include <thread>

#include "http/ascii.hpp"
#include "http/path_normalizer.hpp"
#include "net/address.hpp"
#include "tls/client_context.hpp"
#include "tls/server_context.hpp"

namespace mailgate::runtime {

const compiled_location* snapshot::route(std::string_view path) const {
    for (const auto& loc : locations) {
        const std::string_view p = loc.prefix;
        if (!path.starts_with(p)) continue;
        if (p.size() == 1 || path.size() == p.size() || path[p.size()] == '/') return &loc;
    }
    return nullptr;
}

namespace {

std::string hsts_line(const config::hsts_settings& h) {
    if (h.max_age.count() == 0) return {};
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(h.max_age).count();
    std::string line = "Strict-Transport-Security: max-age=" + std::to_string(seconds);
    if (h.include_subdomains) line += "; includeSubDomains";
    if (h.preload) line += "; preload";
    return line + "\r\n";
}

http::header_policy compile_header_policy(const config::header_policy_section& cfg) {
    http::header_policy out;
    for (const auto& name : cfg.remove) out.remove.push_back(http::ascii::to_lower_copy(name));
    out.add = cfg.add;
    out.set = cfg.set;
    return out;
}

void compile_listeners(const config::root& cfg, snapshot& s, config::diagnostics& diags) {
    for (const auto& l : cfg.listeners) {
        compiled_listener out;
        out.name = l.name;
        out.http_redirect = l.http_redirect;
        if (!l.http_redirect) out.hsts = hsts_line(l.tls.hsts);
        out.proxy_protocol = l.proxy_protocol;
        for (const auto& cidr : l.trusted_proxies) {
            std::string error;
            if (!out.trusted_proxies.add(cidr.text, error))
                diags.error(cidr.mark, "invalid trusted proxy '" + cidr.text + "': " + error);
        }
        out.trusted_proxies.finalize();
        for (const auto& a : l.addresses) {
            const auto hp = net::split_host_port(a);
            std::string error;
            auto eps = hp ? net::resolve(*hp, error) : decltype(net::resolve(*hp, error)){};
            if (!hp || eps.empty()) {
                diags.error(l.address_mark, "invalid listen address '" + a + "'" +
                                                (error.empty() ? "" : ": " + error));
                continue;
            }
            out.endpoints.push_back(eps.front());
        }
        if (!l.http_redirect) {
            auto server_tls = tls::make_server_tls(l.tls, l.name, diags);
            out.tls = std::move(server_tls.context);
            out.certificates = std::move(server_tls.certificates);
        }
        s.listeners.push_back(std::move(out));
    }
}

void compile_upstreams(const config::root& cfg, snapshot& s, config::diagnostics& diags) {
    for (const auto& u : cfg.upstreams) {
        compiled_upstream out;
        out.name = u.name;
        out.max_idle = u.pool.max_idle;
        out.idle_timeout = u.pool.idle_timeout;
        for (const auto& server : u.servers) {
            const auto hp = net::split_host_port(server);
            std::string error;
            if (!hp) {
                diags.error(u.servers_mark, "invalid server address '" + server + "'");
                continue;
            }
            const auto eps = net::resolve(*hp, error);
            if (eps.empty()) {
                diags.error(u.servers_mark, error);
                continue;
            }
            if (out.server_name.empty()) out.server_name = hp->host;
            out.internal_names.push_back(http::ascii::to_lower_copy(hp->host));
            for (const auto& ep : eps) out.servers.push_back({server, ep});
        }
        if (u.tls.server_name) out.server_name = *u.tls.server_name;
        out.internal_names.push_back(http::ascii::to_lower_copy(out.server_name));
        out.external_host = u.external_host.value_or("");
        out.tls = tls::make_client_context(u.tls, diags);
        out.insecure_skip_verify = u.tls.insecure_skip_verify;
        s.upstreams.push_back(std::move(out));
    }
}

std::shared_ptr<const compiled_dynamic_ip> compile_dynamic_ip(const config::dynamic_ip_section& d,
                                                              std::string rule, std::uint32_t scope,
                                                              config::rule_mode policy_mode,
                                                              config::diagnostics& diags) {
    auto out = std::make_shared<compiled_dynamic_ip>();
    out->limits.max_concurrent = d.max_concurrent_requests;
    out->limits.rate_count = d.max_requests;
    out->limits.rate_per = d.per;
    out->limits.block_for = d.block_for;
    out->act = d.act;
    out->mode = policy_mode == config::rule_mode::report
                    ? config::rule_mode::report
                    : d.mode.value_or(config::rule_mode::enforce);
    for (const auto& cidr : d.exempt) {
        std::string error;
        if (!out->exempt.add(cidr.text, error))
            diags.error(cidr.mark, "invalid exempt address '" + cidr.text + "': " + error);
    }
    out->exempt.finalize();
    out->rule = std::move(rule);
    out->scope = scope;
    return out;
}

// A location's limiter scope: stable across reloads as long as its path is.
std::uint32_t scope_of(std::string_view path) {
    std::uint32_t h = 2166136261u;
    for (const char c : path) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h | 1u;  // never 0, the global scope
}

void compile_locations(const config::root& cfg, snapshot& s, config::diagnostics& diags) {
    const auto auth = [&](const config::auth_failure_section& a, std::string rule,
                          std::uint32_t scope) {
        auto out = std::make_shared<compiled_auth_failures>();
        out->max_failures = a.max_failures;
        out->max_failures_per_address = a.max_failures_per_address;
        out->per = a.per;
        out->cool_off = a.cool_off;
        out->mode = cfg.policy_mode == config::rule_mode::report
                        ? config::rule_mode::report
                        : a.mode.value_or(config::rule_mode::enforce);
        out->rule = std::move(rule);
        out->scope = scope;
        return std::shared_ptr<const compiled_auth_failures>(std::move(out));
    };
    std::shared_ptr<const compiled_auth_failures> global_auth;
    if (cfg.auth_failure_limits)
        global_auth = auth(*cfg.auth_failure_limits, "auth_failure_limits", 0x40000000u);
    if (cfg.anonymous_autodiscover)
        s.anonymous_autodiscover =
            compile_dynamic_ip(*cfg.anonymous_autodiscover, "anonymous_autodiscover", 0x20000000u,
                               cfg.policy_mode, diags);
    std::shared_ptr<const compiled_dynamic_ip> global_limits;
    if (cfg.dynamic_ip_restrictions && cfg.dynamic_ip_restrictions->has_limits)
        global_limits = compile_dynamic_ip(*cfg.dynamic_ip_restrictions, "dynamic_ip_restrictions",
                                           0, cfg.policy_mode, diags);
    for (const auto& l : cfg.locations) {
        compiled_location out;
        out.index = static_cast<std::size_t>(&l - cfg.locations.data());
        out.kind = l.kind;
        auto norm = http::normalize_path(l.path);
        if (!norm.ok) {
            diags.error(l.mark, "location path '" + l.path +
                                    "' is not a normalized path: " + std::string(norm.reason));
            continue;
        }
        out.prefix = std::move(norm.path);
        while (out.prefix.size() > 1 && out.prefix.back() == '/') out.prefix.pop_back();
        const auto it = std::find_if(cfg.upstreams.begin(), cfg.upstreams.end(),
                                     [&](const auto& u) { return u.name == l.upstream; });
        if (it == cfg.upstreams.end()) {
            diags.error(l.upstream_mark, "unknown upstream '" + l.upstream + "'");
            continue;
        }
        out.upstream = static_cast<std::size_t>(it - cfg.upstreams.begin());
        out.idle = l.timeouts.idle.value_or(cfg.timeouts.idle);
        out.upstream_response =
            l.timeouts.upstream_response.value_or(cfg.timeouts.upstream_response);
        out.request_body = l.request_body.value_or(cfg.limits.request_body);
        out.dynamic_ip = global_limits;
        out.auth_failures = l.auth_failure_limits
                                ? auth(*l.auth_failure_limits, l.path + "/auth_failure_limits",
                                       scope_of(out.prefix) ^ 0x40000000u)
                                : global_auth;
        if (l.dynamic_ip_restrictions)
            out.dynamic_ip =
                compile_dynamic_ip(*l.dynamic_ip_restrictions, l.path + "/dynamic_ip_restrictions",
                                   scope_of(out.prefix), cfg.policy_mode, diags);
        if (l.dynamic_device_restrictions)
            out.dynamic_device = compile_dynamic_ip(
                *l.dynamic_device_restrictions, l.path + "/dynamic_device_restrictions",
                scope_of(out.prefix) ^ 0x80000000u, cfg.policy_mode, diags);
        out.headers =
            l.headers ? http::header_policy::merged(s.headers, compile_header_policy(*l.headers))
                      : s.headers;
        s.request_body_ceiling = std::max(s.request_body_ceiling, out.request_body);
        s.locations.push_back(std::move(out));
    }
    std::stable_sort(s.locations.begin(), s.locations.end(), [](const auto& a, const auto& b) {
        return a.prefix.size() > b.prefix.size();
    });
}

}  // namespace

std::shared_ptr<const snapshot> build_snapshot(const config::root& cfg,
                                               config::diagnostics& diags) {
    auto s = std::make_shared<snapshot>();
    s->workers = cfg.server.workers != 0 ? cfg.server.workers
                                         : std::max(1u, std::thread::hardware_concurrency());
    s->drain_timeout = cfg.server.drain_timeout;
    s->user = cfg.server.user;
    if (cfg.server.admin) {
        const auto hp = net::split_host_port(*cfg.server.admin);
        std::string error;
        const auto eps =
            hp ? net::resolve(*hp, error) : std::vector<boost::asio::ip::tcp::endpoint>{};
        if (eps.empty())
            diags.error(cfg.server.admin_mark, "invalid admin address '" + *cfg.server.admin + "'");
        else if (!eps.front().address().is_loopback())
            diags.warning(
                cfg.server.admin_mark,
                "admin endpoint on a non-loopback address: metrics are exposed to the network");
        if (!eps.empty()) s->admin = eps.front();
    }
    s->access_log = cfg.log.access;
    s->log_level = cfg.log.level;
    s->log_user_names = cfg.log.user_names;
    s->max_connections = cfg.limits.connections;
    s->max_connections_per_ip = cfg.limits.connections_per_ip;
    if (const auto& d = cfg.dynamic_ip_restrictions) {
        s->limit_store = d->store;
        s->deny_on_store_error = d->deny_on_store_error;
        s->store_timeout = d->store_timeout;
    }
    for (const auto& loc : cfg.locations)
        for (const auto& rule : loc.request_blocking)
            for (const auto* block : {&rule.condition, rule.unless ? &*rule.unless : nullptr})
                if (block && block->eas && block->eas->device_id_file)
                    s->watched_files.push_back(*block->eas->device_id_file);
    s->head_limits = {cfg.limits.request_line, cfg.limits.request_headers, cfg.limits.header_count};
    s->timeouts = {cfg.timeouts.tls_handshake, cfg.timeouts.request_header,
                   cfg.timeouts.idle,          cfg.timeouts.upstream_connect,
                   cfg.timeouts.send,          cfg.timeouts.body_min_rate};
    s->headers = compile_header_policy(cfg.headers);
    compile_listeners(cfg, *s, diags);
    compile_upstreams(cfg, *s, diags);
    compile_locations(cfg, *s, diags);
    s->policy = policy::policy_set::compile(cfg, diags);
    if (diags.has_errors()) return nullptr;
    return s;
}

}  // namespace mailgate::runtime
