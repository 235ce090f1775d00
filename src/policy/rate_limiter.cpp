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

rate_limiter::entry* rate_limiter::find_or_add(shard& sh, const key& k, std::int64_t now) {
    if (auto it = sh.map.find(k); it != sh.map.end()) return &it->second;
    if (sh.map.size() >= per_shard_cap_) sweep(sh, now);
    if (sh.map.size() >= per_shard_cap_) {
        // Full of live state: a new key goes untracked rather than evict a blocked one
        // (evicting would let a spray of addresses unblock an attacker). Counted.
        table_full_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    return &sh.map.emplace(k, entry{}).first->second;
}

limit_decision rate_limiter::acquire(const key& k, const limit_settings& s,
                                     limiter_clock::time_point when, bool count_concurrent) {
    const std::int64_t now = ns(when);
    limit_decision d;
    auto& sh = shard_of(k);
    std::lock_guard lock(sh.mutex);
    entry* found = find_or_add(sh, k, now);
    if (found == nullptr) {
        d.outcome = limit_outcome::untracked;
        return d;
    }
    entry& e = *found;
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

bool rate_limiter::record_failure(const key& k, std::uint64_t max, std::chrono::nanoseconds per,
                                  std::chrono::nanoseconds cool_off,
                                  limiter_clock::time_point when) {
    const std::int64_t now = ns(when);
    auto& sh = shard_of(k);
    std::lock_guard lock(sh.mutex);
    entry* found = find_or_add(sh, k, now);
    if (found == nullptr) return false;
    entry& e = *found;
    // GCRA with `max` cells per `per`: this failure takes one; when no cell is left for the
    // next, the key has had `max` failures within `per`.
    const std::int64_t interval =
        std::max<std::int64_t>(per.count() / static_cast<std::int64_t>(max), 1);
    const std::int64_t tolerance = per.count() - interval;
    e.tat = std::max(e.tat, now) + interval;
    if (e.tat - now > tolerance) {
        e.blocked_until = now + cool_off.count();
        return true;
    }
    return false;
}

std::uint32_t rate_limiter::blocked_for(const key& k, limiter_clock::time_point when) const {
    const std::int64_t now = ns(when);
    const auto& sh = shards_[key_hash{}(k) % shard_count];
    std::lock_guard lock(sh.mutex);
    const auto it = sh.map.find(k);
    return it == sh.map.end() ? 0 : seconds_up(it->second.blocked_until - now);
}

void rate_limiter::reset(const key& k) {
    auto& sh = shard_of(k);
    std::lock_guard lock(sh.mutex);
    if (auto it = sh.map.find(k); it != sh.map.end() && it->second.concurrent == 0)
        sh.map.erase(it);
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
