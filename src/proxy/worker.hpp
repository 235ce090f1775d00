#pragma once
// One worker: an io_context on its own thread, its listening sockets, upstream pools and
// counters. Nothing here is shared with another worker except the snapshot holder.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "observe/access_log.hpp"
#include "policy/redis_store.hpp"
#include "proxy/limit_store.hpp"
#include "proxy/upstream_pool.hpp"
#include "runtime/snapshot.hpp"

namespace mailgate::proxy {

class client_session;

// One accepted client connection's share of limits.connections and
// limits.connections_per_ip, given back when the connection's session ends.
class connection_ticket {
public:
    connection_ticket() = default;
    connection_ticket(std::atomic<std::size_t>* open, policy::rate_limiter* limiter,
                      const policy::rate_limiter::key& key)
        : open_(open), limiter_(limiter), key_(key) {}
    connection_ticket(connection_ticket&& o) noexcept
        : open_(std::exchange(o.open_, nullptr)),
          limiter_(std::exchange(o.limiter_, nullptr)),
          key_(o.key_) {}
    connection_ticket& operator=(connection_ticket&& o) noexcept {
        std::swap(open_, o.open_);
        std::swap(limiter_, o.limiter_);
        std::swap(key_, o.key_);
        return *this;
    }
    ~connection_ticket() {
        if (open_) open_->fetch_sub(1, std::memory_order_relaxed);
        if (limiter_) limiter_->release(key_);
    }

private:
    std::atomic<std::size_t>* open_ = nullptr;
    policy::rate_limiter* limiter_ = nullptr;  // set when a per-address slot is held
    policy::rate_limiter::key key_{};
};

struct upstream_pools {
    std::shared_ptr<const runtime::snapshot> snapshot;
    std::vector<upstream_pool> pools;  // indexed like snapshot->upstreams
};

// Hits per rule of one snapshot: [id][0] enforced (decided), [id][1] reported.
// Written by one worker, read by anyone (relaxed atomics).
struct policy_hits {
    std::shared_ptr<const runtime::snapshot> snapshot;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts;  // 2 per rule
};

struct worker_counters {
    // dynamic_ip_restrictions decisions: [rate|concurrent|blocked][enforce|report].
    std::atomic<std::uint64_t> dynamic_ip[3][2]{};
    std::atomic<std::uint64_t> dynamic_device[3][2]{};  // dynamic_device_restrictions, alike
    std::atomic<std::uint64_t> auth_failures{0};        // upstream 401s to credentials
    std::atomic<std::uint64_t> auth_throttled[2]{};     // answered locally [enforce|report]
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> connections_refused[2]{};  // [limits.connections | per_ip]
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> session_exceptions{0};
    // Requests that the shared store did not decide in time: [allowed | denied].
    std::atomic<std::uint64_t> store_unanswered[2]{};
};

class worker {
public:
    worker(unsigned id, runtime::snapshot_holder& snapshots,
           std::shared_ptr<const observe::access_log> access_log,
           std::shared_ptr<policy::rate_limiter> limiter,
           std::shared_ptr<policy::redis_store> redis = nullptr);

    // Startup (main thread, before run): one listening socket per listener address.
    void add_listener(boost::asio::ip::tcp::acceptor acceptor, std::size_t listener_index);
    // The worker thread's body: accept loops, the deadline tick, until stopped.
    void run();

    // Thread-safe: posted into the worker. Stop accepting, close idle keep-alive
    // connections, let in-flight requests finish and close their connections after.
    void begin_drain();
    // Thread-safe: ends run() now.
    void stop() { io_.stop(); }
    std::size_t active_sessions() const { return active_.load(std::memory_order_relaxed); }

    // Used by sessions (worker thread only).
    boost::asio::io_context& io() { return io_; }
    const runtime::snapshot_holder& snapshots() const { return snapshots_; }
    const observe::access_log& access_log() const { return *access_log_; }
    // The pools for `snap`'s upstreams. A session holds the returned pointer for its whole
    // exchange, so a reload never pulls a pool from under a request in flight.
    std::shared_ptr<upstream_pools> pools_for(const std::shared_ptr<const runtime::snapshot>& snap);
    bool draining() const { return draining_; }
    void enter(client_session* s);
    void leave(client_session* s);
    worker_counters& counters() { return counters_; }
    const worker_counters& counters() const { return counters_; }
    // The state of dynamic limits and failed-login counts, local or Redis (sessions).
    limit_store& limits() { return limits_; }
    // Shared by all workers and kept across reloads; connection limits always use it (they
    // count this instance's sockets). For metrics.
    policy::rate_limiter& limiter() { return *limiter_; }
    // The Redis store when `store: redis://...`, else nullptr. For metrics.
    policy::redis_store* redis() { return redis_.get(); }
    void count_policy(const std::shared_ptr<const runtime::snapshot>& snap,
                      const policy::verdict& v);
    // Hits of the rule with `id` in the current snapshot: {enforced, reported}.
    std::pair<std::uint64_t, std::uint64_t> policy_hits_of(std::uint32_t id) const;
    unsigned id() const { return id_; }

private:
    void accept_loop(std::size_t acceptor_index);
    // limits.connections and connections_per_ip: a ticket, or nullopt to close at once.
    std::optional<connection_ticket> admit(const boost::asio::ip::tcp::socket& socket,
                                           std::size_t listener_index);
    void schedule_tick();

    unsigned id_;
    runtime::snapshot_holder& snapshots_;
    std::shared_ptr<const observe::access_log> access_log_;
    std::shared_ptr<policy::rate_limiter> limiter_;
    std::shared_ptr<policy::redis_store> redis_;
    clock::time_point last_refusal_log_{};
    // Declared before io_ so that they outlive it: sessions still open at exit are destroyed
    // inside ~io_context, and they leave the set and touch the counters as they go.
    std::unordered_set<client_session*> sessions_;
    std::atomic<std::size_t> active_{0};
    bool draining_ = false;
    worker_counters counters_;
    // Before io_ too (slots of sessions destroyed inside ~io_context go back to it); it only
    // keeps a reference to io_.
    limit_store limits_{*limiter_, redis_.get(), io_};
    std::shared_ptr<policy_hits> hits_;  // of the newest snapshot seen
    boost::asio::io_context io_{1};
    // Declared after io_: their sockets and timers go before the context does.
    std::vector<std::pair<boost::asio::ip::tcp::acceptor, std::size_t>> acceptors_;
    boost::asio::steady_timer tick_{io_};
    std::shared_ptr<upstream_pools> pools_;  // of the newest snapshot seen
};

}  // namespace mailgate::proxy
