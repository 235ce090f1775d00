#pragma once
// Dynamic IP restrictions, local store: per key (client address + limit scope), a request
// rate limit, a concurrent-request limit and a block once either trips. Shared by all
// workers; sharded so that workers rarely meet on a lock; bounded so that a scan from
// millions of addresses cannot grow memory without limit.
//
// The rate limit is GCRA (the generic cell rate algorithm, as in ATM and redis-cell): one
// "theoretical arrival time" per key. A request at `now` conforms when tat - now <= per - T
// (T = per / count); it then moves tat to max(tat, now) + T. That admits exactly `count`
// requests in any window of length `per` after idleness, spreads the rest at one per T, keeps
// 8 bytes of state per key and has no window edge at which a fixed window lets 2x through.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace mailgate::policy {

using limiter_clock = std::chrono::steady_clock;

struct limit_settings {
    unsigned max_concurrent = 0;           // 0: no concurrency limit
    std::uint64_t rate_count = 0;          // 0: no rate limit
    std::chrono::nanoseconds rate_per{};   // the window `count` requests fit in
    std::chrono::nanoseconds block_for{};  // once tripped, denied for this long
};

enum class limit_outcome : std::uint8_t {
    allowed,
    rate,         // over max_requests
    concurrent,   // over max_concurrent_requests
    blocked,      // inside block_for after an earlier trip
    untracked,    // the table is full: allowed, not tracked (counted)
    store_error,  // the shared store did not answer, and on_store_error is deny
};

struct limit_decision {
    limit_outcome outcome = limit_outcome::allowed;
    // Seconds until a request would be allowed again (for Retry-After); 0 when allowed.
    std::uint32_t retry_after = 0;
    // The caller must call release() when the request ends (a concurrency slot was taken).
    bool holds_slot = false;
    bool denied() const {
        return outcome != limit_outcome::allowed && outcome != limit_outcome::untracked;
    }
};

class rate_limiter {
public:
    // `max_entries`: the table's cap, over all shards.
    explicit rate_limiter(std::size_t max_entries = 1u << 20);

    struct key {
        std::array<std::uint8_t, 16> address{};  // IPv4 as v4-mapped
        std::uint32_t scope = 0;                 // which limit (global, a location...)
        bool operator==(const key&) const = default;
    };
    static key make_key(const boost::asio::ip::address& a, std::uint32_t scope);

    // Decides one request that starts at `now`. `count_concurrent` is false for requests
    // that must not weigh as concurrent load (held long-polls). Report mode calls it too:
    // the same arithmetic and state, so the log shows what enforcement would do.
    limit_decision acquire(const key& k, const limit_settings& s, limiter_clock::time_point now,
                           bool count_concurrent);
    // Ends a request that held a concurrency slot.
    void release(const key& k);

    // Failure counting (auth_failure_limits): `max` failures within `per` put the key in
    // cool-off for `cool_off`. record_failure returns true when this failure did.
    bool record_failure(const key& k, std::uint64_t max, std::chrono::nanoseconds per,
                        std::chrono::nanoseconds cool_off, limiter_clock::time_point now);
    // Seconds of cool-off left for `k` (0: not blocked). Takes nothing.
    std::uint32_t blocked_for(const key& k, limiter_clock::time_point now) const;
    // Forgets `k` (a success resets the count).
    void reset(const key& k);

    std::size_t size() const;
    std::uint64_t table_full() const { return table_full_.load(std::memory_order_relaxed); }

private:
    struct entry {
        std::int64_t tat = 0;            // ns since the clock's epoch
        std::int64_t blocked_until = 0;  // ns
        std::uint32_t concurrent = 0;
    };
    struct key_hash {
        std::size_t operator()(const key& k) const noexcept;
    };
    struct shard {
        mutable std::mutex mutex;
        std::unordered_map<key, entry, key_hash> map;
    };
    static constexpr std::size_t shard_count = 64;

    shard& shard_of(const key& k);
    // Drops entries that carry no state any more (rate idle, not blocked, no slot held).
    static void sweep(shard& sh, std::int64_t now);
    // The entry of `k` in `sh` (locked by the caller), made if need be; nullptr when the
    // shard is full of live state.
    entry* find_or_add(shard& sh, const key& k, std::int64_t now);

    std::array<shard, shard_count> shards_;
    std::size_t per_shard_cap_;
    std::atomic<std::uint64_t> table_full_{0};
};

}  // namespace mailgate::policy
