#include "app/server.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/load.hpp"
#include "config/redis_url.hpp"
#include "net/listener.hpp"
#include "observe/access_log.hpp"
#include "observe/admin.hpp"
#include "proxy/worker.hpp"
#include "tls/extended_protection.hpp"

namespace mailgate::app {
namespace asio = boost::asio;

std::shared_ptr<const runtime::snapshot> load_snapshot(const std::string& path,
                                                       config::diagnostics& diags,
                                                       config::root* loaded_config) {
    auto loaded = config::load_file(path);
    diags = std::move(loaded.diags);
    if (!loaded.config || diags.has_errors()) return nullptr;
    auto snap = runtime::build_snapshot(*loaded.config, diags);
    if (snap && loaded_config) *loaded_config = std::move(*loaded.config);
    return snap;
}

void print_diagnostics(const config::diagnostics& diags) {
    for (const auto& d : diags.items()) std::cerr << d.to_string() << '\n';
}

int check(const std::string& path) {
    config::diagnostics diags(path);
    config::root cfg;
    const auto snap = load_snapshot(path, diags, &cfg);
    if (snap) tls::check_extended_protection(cfg, *snap, diags);
    print_diagnostics(diags);
    if (!snap || diags.has_errors()) return 1;
    std::cerr << path << ": configuration is valid\n";
    return 0;
}

namespace {

spdlog::level::level_enum to_spdlog(config::log_level l) {
    switch (l) {
        case config::log_level::trace:
            return spdlog::level::trace;
        case config::log_level::debug:
            return spdlog::level::debug;
        case config::log_level::info:
            return spdlog::level::info;
        case config::log_level::warn:
            return spdlog::level::warn;
        case config::log_level::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

std::string endpoint_string(const asio::ip::tcp::endpoint& ep) {
    std::ostringstream out;
    out << ep;  // Asio writes "[v6]:port" and "v4:port"
    return out.str();
}

// Listener addresses and names are bound once; a reload may change everything else.
bool same_listeners(const runtime::snapshot& a, const runtime::snapshot& b) {
    if (a.listeners.size() != b.listeners.size()) return false;
    for (std::size_t i = 0; i < a.listeners.size(); ++i)
        if (a.listeners[i].name != b.listeners[i].name ||
            a.listeners[i].endpoints != b.listeners[i].endpoints)
            return false;
    return true;
}

void drop_privileges(const std::string& user) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) throw std::runtime_error("server.user: no such user '" + user + "'");
    if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        throw std::runtime_error("server.user: cannot switch to '" + user + "'");
    // A change of credentials resets the flag to fs.suid_dumpable: set it again.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    spdlog::info("running as user {}", user);
}

// What an operator must see at every start and reload: each certificate served, and each
// upstream whose certificate is not verified.
void log_tls_summary(const runtime::snapshot& snap) {
    for (const auto& l : snap.listeners)
        for (const auto& c : l.certificates) spdlog::info("listener {}: certificate {}", l.name, c);
    for (const auto& u : snap.upstreams)
        if (u.insecure_skip_verify)
            spdlog::warn(
                "upstream {}: insecure_skip_verify is on: the certificate and name of its servers "
                "are not verified",
                u.name);
}

std::string metrics_text(const std::vector<std::unique_ptr<proxy::worker>>& workers,
                         const runtime::snapshot& snap) {
    std::uint64_t connections = 0, requests = 0, exceptions = 0, active = 0;
    for (const auto& w : workers) {
        connections += w->counters().connections.load(std::memory_order_relaxed);
        requests += w->counters().requests.load(std::memory_order_relaxed);
        exceptions += w->counters().session_exceptions.load(std::memory_order_relaxed);
        active += w->active_sessions();
    }
    std::string out;
    auto line = [&](std::string_view name, std::string_view labels, std::uint64_t v) {
        out.append(name);
        if (!labels.empty()) out.append("{").append(labels).append("}");
        out.append(" ").append(std::to_string(v)).append("\n");
    };
    out += "# TYPE mailgate_connections_total counter\n";
    line("mailgate_connections_total", "", connections);
    std::uint64_t refused[2] = {0, 0};
    for (const auto& w : workers)
        for (int i = 0; i < 2; ++i)
            refused[i] += w->counters().connections_refused[i].load(std::memory_order_relaxed);
    out += "# TYPE mailgate_connections_refused_total counter\n";
    line("mailgate_connections_refused_total", "limit=\"connections\"", refused[0]);
    line("mailgate_connections_refused_total", "limit=\"connections_per_ip\"", refused[1]);
    out += "# TYPE mailgate_connections_active gauge\n";
    line("mailgate_connections_active", "", active);
    out += "# TYPE mailgate_requests_total counter\n";
    line("mailgate_requests_total", "", requests);
    out += "# TYPE mailgate_session_exceptions_total counter\n";
    line("mailgate_session_exceptions_total", "", exceptions);
    static constexpr std::array<std::string_view, 3> reasons{"rate", "concurrent", "blocked"};
    static constexpr std::array<std::string_view, 2> modes{"enforce", "report"};
    using decision_counts = std::atomic<std::uint64_t>[3][2];
    const auto decisions = [&](std::string_view family,
                               const decision_counts& (*of)(const proxy::worker&)) {
        out.append("# TYPE ").append(family).append(" counter\n");
        for (std::size_t r = 0; r < reasons.size(); ++r)
            for (std::size_t m = 0; m < modes.size(); ++m) {
                std::uint64_t n = 0;
                for (const auto& w : workers) n += of(*w)[r][m].load(std::memory_order_relaxed);
                line(family,
                     "limit=\"" + std::string(reasons[r]) + "\",mode=\"" + std::string(modes[m]) +
                         "\"",
                     n);
            }
    };
    std::uint64_t failures = 0, throttled[2] = {0, 0};
    for (const auto& w : workers) {
        failures += w->counters().auth_failures.load(std::memory_order_relaxed);
        for (int m = 0; m < 2; ++m)
            throttled[m] += w->counters().auth_throttled[m].load(std::memory_order_relaxed);
    }
    out += "# TYPE mailgate_auth_failures_total counter\n";
    line("mailgate_auth_failures_total", "", failures);
    out += "# TYPE mailgate_auth_throttled_total counter\n";
    line("mailgate_auth_throttled_total", "mode=\"enforce\"", throttled[0]);
    line("mailgate_auth_throttled_total", "mode=\"report\"", throttled[1]);
    decisions(
        "mailgate_dynamic_ip_decisions_total",
        [](const proxy::worker& w) -> const decision_counts& { return w.counters().dynamic_ip; });
    decisions("mailgate_dynamic_device_decisions_total",
              [](const proxy::worker& w) -> const decision_counts& {
                  return w.counters().dynamic_device;
              });
    if (!workers.empty()) {
        auto& limiter = workers.front()->limiter();
        out += "# TYPE mailgate_dynamic_ip_entries gauge\n";
        line("mailgate_dynamic_ip_entries", "store=\"local\"", limiter.size());
        out += "# TYPE mailgate_dynamic_ip_table_full_total counter\n";
        line("mailgate_dynamic_ip_table_full_total", "store=\"local\"", limiter.table_full());
        if (auto* redis = workers.front()->redis()) {
            out += "# TYPE mailgate_store_up gauge\n";
            line("mailgate_store_up", "store=\"redis\"", redis->connected() ? 1 : 0);
            out += "# TYPE mailgate_store_errors_total counter\n";
            line("mailgate_store_errors_total", "store=\"redis\"", redis->errors());
            out += "# TYPE mailgate_store_round_trips_total counter\n";
            line("mailgate_store_round_trips_total", "store=\"redis\"", redis->round_trips());
        }
        std::uint64_t unanswered[2] = {0, 0};
        for (const auto& w : workers)
            for (int i = 0; i < 2; ++i)
                unanswered[i] += w->counters().store_unanswered[i].load(std::memory_order_relaxed);
        out += "# TYPE mailgate_store_unanswered_total counter\n";
        line("mailgate_store_unanswered_total", "decided=\"allow\"", unanswered[0]);
        line("mailgate_store_unanswered_total", "decided=\"deny\"", unanswered[1]);
    }
    out += "# TYPE mailgate_rule_hits_total counter\n";
    for (const auto& r : snap.policy->rules()) {
        std::uint64_t enforced = 0, reported = 0;
        for (const auto& w : workers) {
            const auto [e, rep] = w->policy_hits_of(r.id);
            enforced += e;
            reported += rep;
        }
        const std::string base = "rule=\"" + observe::prometheus_label(r.name) + "\",action=\"" +
                                 std::string(policy::to_string(r.act)) + "\",mode=\"";
        line("mailgate_rule_hits_total", base + "enforce\"", enforced);
        line("mailgate_rule_hits_total", base + "report\"", reported);
    }
    return out;
}

std::string status_text(const std::vector<std::unique_ptr<proxy::worker>>& workers,
                        const runtime::snapshot& snap) {
    std::size_t active = 0;
    for (const auto& w : workers) active += w->active_sessions();
    return "{\"version\":\"" MAILGATE_VERSION "\",\"workers\":" + std::to_string(workers.size()) +
           ",\"connections_active\":" + std::to_string(active) +
           ",\"rules\":" + std::to_string(snap.policy->rules().size()) + "}\n";
}

}  // namespace

int run(const std::string& path) {
    auto logger = spdlog::stderr_logger_mt("mailgate");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    config::diagnostics diags(path);
    config::root cfg;
    auto snap = load_snapshot(path, diags, &cfg);
    std::vector<std::string> same_certificates;
    if (snap) same_certificates = tls::check_extended_protection(cfg, *snap, diags);
    print_diagnostics(diags);
    if (!snap || diags.has_errors()) return 1;  // e.g. require_same_certificate, and they differ
    spdlog::set_level(to_spdlog(snap->log_level));
    log_tls_summary(*snap);
    for (const auto& line : same_certificates) spdlog::info("{}", line);

    // Key material must never reach a core file or a debugger attached by another user.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    std::signal(SIGPIPE, SIG_IGN);

    std::shared_ptr<const observe::access_log> access;
    try {
        access = observe::access_log::open(snap->access_log);
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }

    runtime::snapshot_holder holder;
    holder.store(snap);
    auto limiter = std::make_shared<policy::rate_limiter>();
    std::shared_ptr<policy::redis_store> redis;
    if (snap->limit_store != "local") {
        std::string why;
        auto endpoint = config::parse_redis_url(snap->limit_store, why);  // checked at load
        if (!endpoint) return 1;
        redis = std::make_shared<policy::redis_store>(std::move(*endpoint), snap->store_timeout);
        spdlog::info(
            "dynamic limits and auth failure counts live in redis://{} (timeout {} ms, "
            "on_store_error: {})",
            redis->where(),
            std::chrono::duration_cast<std::chrono::milliseconds>(snap->store_timeout).count(),
            snap->deny_on_store_error ? "deny" : "allow");
    }
    std::vector<std::unique_ptr<proxy::worker>> workers;
    for (unsigned i = 0; i < snap->workers; ++i)
        workers.push_back(std::make_unique<proxy::worker>(i, holder, access, limiter, redis));
    // The store's thread posts into the workers' contexts: it ends before they do.
    struct stop_store {
        policy::redis_store* store;
        ~stop_store() {
            if (store) store->stop();
        }
    } store_guard{redis.get()};

    try {
        for (std::size_t li = 0; li < snap->listeners.size(); ++li) {
            for (auto ep : snap->listeners[li].endpoints) {
                for (auto& w : workers) {
                    auto acceptor = net::open_listener(w->io(), ep);
                    // Port 0: the first socket picks the port, the others share it.
                    ep = acceptor.local_endpoint();
                    w->add_listener(std::move(acceptor), li);
                }
                spdlog::info("listening on {} (listener {})", endpoint_string(ep),
                             snap->listeners[li].name);
            }
        }
        if (const auto& user = snap->user) drop_privileges(*user);
    } catch (const std::exception& e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }

    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
    spdlog::info("mailgate {} started with {} workers", MAILGATE_VERSION, workers.size());

    asio::io_context control;
    if (snap->admin) {
        try {
            observe::start_admin(control, *snap->admin,
                                 {[&] { return metrics_text(workers, *holder.load()); },
                                  [&] { return status_text(workers, *holder.load()); }});
            spdlog::info("admin endpoint on {}", endpoint_string(*snap->admin));
        } catch (const std::exception& e) {
            spdlog::error("cannot start the admin endpoint: {}", e.what());
            for (auto& w : workers) w->stop();
            for (auto& t : threads) t.join();
            return 1;
        }
    }
    asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
    asio::steady_timer drain_timer(control);
    asio::steady_timer watch_timer(control);
    // The device lists (device_id_file) are re-read when they change, not only on SIGHUP:
    // a lost phone is blocked within seconds of its ID landing in the file.
    const auto file_stamps = [](const runtime::snapshot& s) {
        std::vector<std::pair<std::int64_t, std::int64_t>> out;
        for (const auto& f : s.watched_files) {
            struct stat st {};
            if (::stat(f.c_str(), &st) == 0)
                out.emplace_back(st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec,
                                 static_cast<std::int64_t>(st.st_size));
            else
                out.emplace_back(-1, -1);
        }
        return out;
    };
    auto stamps = file_stamps(*snap);
    const auto reload = [&](std::string_view why) {
        // No Extended Protection comparison here: it connects to every upstream, and
        // a reload must stay quick and never wait on the network. It runs at start.
        config::diagnostics reload_diags(path);
        auto next = load_snapshot(path, reload_diags);
        print_diagnostics(reload_diags);
        if (!next) {
            spdlog::error("reload ({}) failed; keeping the running configuration", why);
        } else if (!same_listeners(*holder.load(), *next)) {
            spdlog::error("reload refused: listener names or addresses changed (restart needed)");
        } else {
            if (next->limit_store != holder.load()->limit_store)
                spdlog::warn(
                    "dynamic_ip_restrictions.store changed: the running store stays "
                    "until a restart");
            log_tls_summary(*next);
            stamps = file_stamps(*next);
            holder.store(std::move(next));
            spdlog::info("configuration reloaded ({})", why);
        }
    };
    std::function<void()> watch_files = [&] {
        watch_timer.expires_after(std::chrono::seconds(1));
        watch_timer.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            const auto current = holder.load();
            if (!current->watched_files.empty() && file_stamps(*current) != stamps) {
                stamps = file_stamps(*current);  // a broken file is reported once, not each second
                reload("a device_id_file changed");
            }
            watch_files();
        });
    };
    watch_files();
    int exit_code = 0;
    std::function<void()> wait_signal;
    std::function<void(std::chrono::steady_clock::time_point)> wait_drained;

    wait_drained = [&](std::chrono::steady_clock::time_point deadline) {
        std::size_t active = 0;
        for (auto& w : workers) active += w->active_sessions();
        if (active == 0 || std::chrono::steady_clock::now() >= deadline) {
            if (active != 0) spdlog::warn("drain deadline passed with {} connections open", active);
            for (auto& w : workers) w->stop();
            control.stop();  // the admin endpoint runs here too
            return;
        }
        drain_timer.expires_after(std::chrono::milliseconds(50));
        drain_timer.async_wait([&, deadline](boost::system::error_code ec) {
            if (!ec) wait_drained(deadline);
        });
    };
    wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code ec, int sig) {
            if (ec) return;
            if (sig == SIGINT) {
                spdlog::info("SIGINT: exiting now");
                spdlog::shutdown();
                std::_Exit(130);
            }
            if (sig == SIGHUP) {
                reload("SIGHUP");
                wait_signal();
                return;
            }
            spdlog::info("SIGTERM: draining (up to {} ms)", holder.load()->drain_timeout.count());
            watch_timer.cancel();
            for (auto& w : workers) w->begin_drain();
            wait_drained(std::chrono::steady_clock::now() + holder.load()->drain_timeout);
        });
    };
    wait_signal();
    control.run();
    for (auto& t : threads) t.join();
    spdlog::info("stopped");
    return exit_code;
}

}  // namespace mailgate::app
