#include "policy/rate_limiter.hpp"

#include <algorithm>
#include <cstring>

namespace mailgate::policy {
namespace {

std::int64_t ns(limiter_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::uint32_t seconds_up(std::int64_t ns_left) {
    if (ns_left <= 0) return 0;
    return static_cast<std::uint32_t>((ns_left + 999'999'999) / 1'000'000'000);
}

}  // namespace

rate_limiter::rate_limiter(std::size_t max_entries)
    : per_shard_cap_(std::max<std::size_t>(1, max_entries / shard_count)) {}

rate_limiter::key rate_limiter::make_key(const boost::asio::ip::address& a, std::uint32_t scope) {
    key k;
    k.scope = scope;
    if (a.is_v4()) {
        k.address =
            boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
    } else {
        k.address = a.to_v6().to_bytes();
    }
    return k;
}

std::size_t rate_limiter::key_hash::operator()(const key& k) const noexcept {
    // FNV-1a over the 20 bytes; addresses are attacker-chosen, but a shard holds a bounded
    // number of entries, so a crafted collision chain costs the attacker more than us.
    std::uint64_t h = 1469598103934665603ull;
    for (auto b : k.address) h = (h ^ b) * 1099511628211ull;
    for (int i = 0; i < 4; ++i) h = (h ^ ((k.scope >> (8 * i)) & 0xff)) * 1099511628211ull;
    return static_cast<std::size_t>(h);
}

rate_limiter::shard& rate_limiter::shard_of(const key& k) {
    return shards_[key_hash{}(k) % shard_count];
}

void rate_limiter::sweep(shard& sh, std::int64_t now) {
    std::erase_if(sh.map, [now](const auto& kv) {
        const entry& e = kv.second;
        return e.tat <= now && e.blocked_until <= now && e.concurrent == 0;
    });
}

limit_decision rate_limiter::acquire(const key& k, const limit_settings& s,
                                     limiter_clock::time_point when, bool count_concurrent) {
    const std::int64_t now = ns(when);
    limit_decision d;
    auto& sh = shard_of(k);
    std::lock_guard lock(sh.mutex);
    auto it = sh.map.find(k);
    if (it == sh.map.end()) {
        if (sh.map.size() >= per_shard_cap_) sweep(sh, now);
        if (sh.map.size() >= per_shard_cap_) {
            // Full of live state: a new address is let through untracked rather than evict
            // a blocked one (evicting would let a spray of addresses unblock an attacker).
            table_full_.fetch_add(1, std::memory_order_relaxed);
            d.outcome = limit_outcome::untracked;
            return d;
        }
        it = sh.map.emplace(k, entry{}).first;
    }
    entry& e = it->second;
    if (e.blocked_until > now) {
        d.outcome = limit_outcome::blocked;
        d.retry_after = seconds_up(e.blocked_until - now);
        return d;
    }
    const auto trip = [&](limit_outcome why, std::int64_t until) {
        d.outcome = why;
        if (s.block_for.count() > 0) {
            e.blocked_until = now + s.block_for.count();
            until = std::max(until, e.blocked_until);
        }
        d.retry_after = std::max<std::uint32_t>(1, seconds_up(until - now));
    };
    if (s.rate_count > 0) {
        const std::int64_t interval = s.rate_per.count() / static_cast<std::int64_t>(s.rate_count);
        const std::int64_t tolerance = s.rate_per.count() - interval;
        const std::int64_t tat = std::max(e.tat, now);
        if (tat - now > tolerance) {
            trip(limit_outcome::rate, tat - tolerance);
            return d;
        }
        e.tat = tat + std::max<std::int64_t>(interval, 1);
    }
    if (count_concurrent && s.max_concurrent > 0) {
        if (e.concurrent >= s.max_concurrent) {
            trip(limit_outcome::concurrent, now + 1'000'000'000);
            return d;
        }
        ++e.concurrent;
        d.holds_slot = true;
    }
    return d;
}

void rate_limiter::release(const key& k) {
    auto& sh = shard_of(k);
    std::lock_guard lock(sh.mutex);
    if (auto it = sh.map.find(k); it != sh.map.end() && it->second.concurrent > 0)
        --it->second.concurrent;
}

std::size_t rate_limiter::size() const {
    std::size_t n = 0;
    for (const auto& sh : shards_) {
        std::lock_guard lock(sh.mutex);
        n += sh.map.size();
    }
    return n;
}

}  // namespace mailgate::policy
