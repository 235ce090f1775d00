// The dynamic IP limiter's arithmetic with an injected clock: GCRA rate, concurrency,
// block_for, scopes, the table cap.
#include "policy/rate_limiter.hpp"

#include <gtest/gtest.h>

using namespace mailgate::policy;
using namespace std::chrono_literals;

namespace {

const auto t0 = limiter_clock::time_point{} + 1000h;
const auto a = boost::asio::ip::make_address("192.0.2.1");
const auto b = boost::asio::ip::make_address("192.0.2.2");

limit_settings rate(std::uint64_t count, std::chrono::nanoseconds per,
                    std::chrono::nanoseconds block = {}) {
    limit_settings s;
    s.rate_count = count;
    s.rate_per = per;
    s.block_for = block;
    return s;
}

}  // namespace

TEST(RateLimiter, CountRequestsPerWindowThenOneEveryInterval) {
    rate_limiter l;
    const auto k = rate_limiter::make_key(a, 0);
    const auto s = rate(20, 200ms);  // IIS's default: 20 per 200 ms
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(l.acquire(k, s, t0, true).outcome, limit_outcome::allowed) << i;
    const auto d = l.acquire(k, s, t0, true);
    EXPECT_EQ(d.outcome, limit_outcome::rate);
    EXPECT_EQ(d.retry_after, 1u);
    // One interval (10 ms) later exactly one more fits.
    EXPECT_EQ(l.acquire(k, s, t0 + 10ms, true).outcome, limit_outcome::allowed);
    EXPECT_EQ(l.acquire(k, s, t0 + 10ms, true).outcome, limit_outcome::rate);
    // After a whole idle window the full burst is back.
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(l.acquire(k, s, t0 + 1s, true).outcome, limit_outcome::allowed) << i;
}

TEST(RateLimiter, NoDoubleBurstAtAWindowEdge) {
    rate_limiter l;
    const auto k = rate_limiter::make_key(a, 0);
    const auto s = rate(10, 10s);
    int allowed = 0;
    // 10 at the end of one "window" and 10 at the start of the next: a fixed window would
    // let 20 through in 2 s; GCRA lets 10 plus what the 2 s earned (2).
    for (int i = 0; i < 10; ++i) allowed += !l.acquire(k, s, t0 + 9s, true).denied();
    for (int i = 0; i < 10; ++i) allowed += !l.acquire(k, s, t0 + 11s, true).denied();
    EXPECT_EQ(allowed, 12);
}

TEST(RateLimiter, BlockForHoldsAfterATripAndExpires) {
    rate_limiter l;
    const auto k = rate_limiter::make_key(a, 0);
    const auto s = rate(2, 1s, 60s);
    EXPECT_FALSE(l.acquire(k, s, t0, true).denied());
    EXPECT_FALSE(l.acquire(k, s, t0, true).denied());
    const auto trip = l.acquire(k, s, t0, true);
    EXPECT_EQ(trip.outcome, limit_outcome::rate);
    EXPECT_EQ(trip.retry_after, 60u);
    const auto later = l.acquire(k, s, t0 + 30s, true);
    EXPECT_EQ(later.outcome, limit_outcome::blocked);
    EXPECT_EQ(later.retry_after, 30u);
    EXPECT_FALSE(l.acquire(k, s, t0 + 60s, true).denied());
}

TEST(RateLimiter, AddressesAndScopesAreSeparate) {
    rate_limiter l;
    const auto s = rate(1, 1s);
    EXPECT_FALSE(l.acquire(rate_limiter::make_key(a, 0), s, t0, true).denied());
    EXPECT_TRUE(l.acquire(rate_limiter::make_key(a, 0), s, t0, true).denied());
    EXPECT_FALSE(l.acquire(rate_limiter::make_key(b, 0), s, t0, true).denied());
    EXPECT_FALSE(l.acquire(rate_limiter::make_key(a, 1), s, t0, true).denied());
    // IPv4 and its v4-mapped IPv6 form are one client.
    const auto mapped = boost::asio::ip::make_address("::ffff:192.0.2.2");
    EXPECT_TRUE(l.acquire(rate_limiter::make_key(mapped, 0), s, t0, true).denied());
}

TEST(RateLimiter, ConcurrencySlotsAreTakenAndReleased) {
    rate_limiter l;
    const auto k = rate_limiter::make_key(a, 0);
    limit_settings s;
    s.max_concurrent = 2;
    const auto d1 = l.acquire(k, s, t0, true);
    const auto d2 = l.acquire(k, s, t0, true);
    EXPECT_TRUE(d1.holds_slot && d2.holds_slot);
    EXPECT_EQ(l.acquire(k, s, t0, true).outcome, limit_outcome::concurrent);
    // A held long-poll does not count.
    const auto ping = l.acquire(k, s, t0, false);
    EXPECT_FALSE(ping.denied());
    EXPECT_FALSE(ping.holds_slot);
    l.release(k);
    EXPECT_EQ(l.acquire(k, s, t0, true).outcome, limit_outcome::allowed);
}

TEST(RateLimiter, TableCapLetsNewAddressesThroughUntrackedAndSweepsIdleOnes) {
    rate_limiter l(64);  // one entry per shard
    const auto s = rate(1, 1s, 60s);
    std::size_t untracked = 0;
    for (unsigned i = 0; i < 1000; ++i) {
        const auto addr = boost::asio::ip::make_address_v4(0x0a000000u + i);
        const auto k = rate_limiter::make_key(addr, 0);
        untracked += l.acquire(k, s, t0, true).outcome == limit_outcome::untracked;
    }
    EXPECT_LE(l.size(), 64u);
    EXPECT_EQ(untracked, l.table_full());
    EXPECT_GE(untracked, 1000u - 64u);
    // Once their state has expired (rate idle, not blocked), entries make room again.
    const auto fresh = rate_limiter::make_key(boost::asio::ip::make_address("203.0.113.9"), 0);
    EXPECT_EQ(l.acquire(fresh, s, t0 + 2s, true).outcome, limit_outcome::allowed);
}

TEST(RateLimiter, BlockedEntriesAreNotEvictedByASpray) {
    rate_limiter l(64);
    const auto s = rate(1, 1s, 3600s);
    const auto k = rate_limiter::make_key(a, 0);
    EXPECT_FALSE(l.acquire(k, s, t0, true).denied());
    EXPECT_TRUE(l.acquire(k, s, t0, true).denied());  // trips: blocked for an hour
    for (unsigned i = 0; i < 5000; ++i) {
        const auto addr = boost::asio::ip::make_address_v4(0x0b000000u + i);
        l.acquire(rate_limiter::make_key(addr, 0), s, t0 + 10s, true);
    }
    EXPECT_EQ(l.acquire(k, s, t0 + 20s, true).outcome, limit_outcome::blocked);
}

TEST(RateLimiter, FailuresPutAKeyInCoolOffAndASuccessResetsIt) {
    rate_limiter l;
    const auto k = rate_limiter::make_key(a, 7);
    const auto per = std::chrono::nanoseconds(30min), cool = std::chrono::nanoseconds(30min);
    EXPECT_FALSE(l.record_failure(k, 4, per, cool, t0));
    EXPECT_FALSE(l.record_failure(k, 4, per, cool, t0 + 1min));
    EXPECT_FALSE(l.record_failure(k, 4, per, cool, t0 + 2min));
    EXPECT_EQ(l.blocked_for(k, t0 + 2min), 0u);
    EXPECT_TRUE(l.record_failure(k, 4, per, cool, t0 + 3min));  // the 4th within 30 min
    EXPECT_EQ(l.blocked_for(k, t0 + 3min), 1800u);
    EXPECT_EQ(l.blocked_for(k, t0 + 32min), 60u);
    EXPECT_EQ(l.blocked_for(k, t0 + 33min), 0u);  // cool-off over
    // A success forgets the count.
    const auto k2 = rate_limiter::make_key(b, 7);
    for (int i = 0; i < 3; ++i) l.record_failure(k2, 4, per, cool, t0);
    l.reset(k2);
    EXPECT_FALSE(l.record_failure(k2, 4, per, cool, t0));
    // Failures spread thinner than 4 per 30 min never block.
    const auto k3 = rate_limiter::make_key(a, 8);
    for (int i = 0; i < 20; ++i)
        EXPECT_FALSE(l.record_failure(k3, 4, per, cool, t0 + i * 8min)) << i;
}
