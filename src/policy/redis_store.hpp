#pragma once
// The shared store of dynamic limits (`store: redis://...`): the same decisions as the local
// rate_limiter, but the state lives in Redis, so that several mailgate instances behind a
// load balancer enforce one limit together.
//
// Each decision is one Lua script run (atomic in Redis, one round trip), on Redis' own clock
// (TIME) so that instances never disagree about time. One thread owns one connection and
// pipelines whatever the workers queued since its last round trip: Redis executes commands
// one at a time anyway, so a pool of connections would only add sockets. Workers never block
// on it: they wait on their own timer (store_timeout) and decide by on_store_error when no
// reply came in time.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "config/redis_url.hpp"
#include "policy/rate_limiter.hpp"

namespace mailgate::policy {

struct store_reply {
    bool ok = false;  // false: Redis failed, or is not connected
    limit_decision decision;
    std::uint32_t seconds = 0;  // blocked_for's answer
};

class redis_store {
public:
    // Runs on the store's thread; must only hand the reply over (post it), never block.
    using done_fn = std::function<void(const store_reply&)>;

    redis_store(config::redis_endpoint endpoint, std::chrono::nanoseconds timeout);
    ~redis_store();
    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    // Ends the thread. Queued work is dropped without calling its done_fn.
    void stop();

    // A new concurrency-slot name, unique across instances (random prefix + counter).
    std::string next_slot();
    void acquire(const rate_limiter::key& k, const limit_settings& s, bool count_concurrent,
                 std::string slot, done_fn done);
    void release(const rate_limiter::key& k, std::string slot);
    void record_failure(const rate_limiter::key& k, std::uint64_t max, std::chrono::nanoseconds per,
                        std::chrono::nanoseconds cool_off);
    void blocked_for(const rate_limiter::key& k, done_fn done);
    void reset(const rate_limiter::key& k);

    bool connected() const { return connected_.load(std::memory_order_relaxed); }
    std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
    std::uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }
    std::string where() const;

    // A concurrency slot whose release never arrives (a crashed instance) stops counting
    // after this long.
    static constexpr std::chrono::minutes slot_lease{15};

private:
    enum class op : std::uint8_t { acquire, release, failure, blocked, reset };
    struct item {
        item(op k, const rate_limiter::key& which) : kind(k), key(which) {}
        op kind;
        rate_limiter::key key;
        std::int64_t a = 0, b = 0, c = 0, d = 0;  // op-specific, µs or counts
        bool flag = false;
        std::string slot;
        done_fn done;
    };
    struct connection;

    void submit(item it);
    void run();
    // Sends a batch as one pipeline and hands out the replies; false when the link failed.
    bool exchange(connection& c, std::deque<item>& batch);
    void fail(std::deque<item>& batch);
    void note_error(const std::string& what);

    config::redis_endpoint endpoint_;
    std::chrono::nanoseconds timeout_;
    std::string instance_;  // random, names this instance's slots
    std::atomic<std::uint64_t> slot_counter_{0};

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<item> queue_;
    bool stopping_ = false;

    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> round_trips_{0};
    std::chrono::steady_clock::time_point last_error_log_{};
    std::thread thread_;
};

}  // namespace mailgate::policy
