// Server choice: round robin, skipping a server in back-off while another is available.
#include "proxy/upstream_pool.hpp"

#include <gtest/gtest.h>

using namespace mailgate;

namespace {
runtime::compiled_upstream three_servers() {
    runtime::compiled_upstream u;
    u.name = "exchange";
    for (int i = 0; i < 3; ++i) u.servers.push_back({"s" + std::to_string(i), {}});
    u.idle_timeout = std::chrono::seconds(60);
    return u;
}
}  // namespace

TEST(UpstreamPool, RoundRobin) {
    const auto u = three_servers();
    proxy::upstream_pool pool(u);
    const auto now = proxy::clock::now();
    EXPECT_EQ(pool.pick_server(now), 0u);
    EXPECT_EQ(pool.pick_server(now), 1u);
    EXPECT_EQ(pool.pick_server(now), 2u);
    EXPECT_EQ(pool.pick_server(now), 0u);
}

TEST(UpstreamPool, SkipsServerInBackoffUntilItEnds) {
    const auto u = three_servers();
    proxy::upstream_pool pool(u);
    const auto now = proxy::clock::now();
    pool.mark_down(1, now);
    EXPECT_EQ(pool.pick_server(now), 0u);
    EXPECT_EQ(pool.pick_server(now), 2u);
    EXPECT_EQ(pool.pick_server(now), 0u);
    const auto later = now + std::chrono::seconds(6);
    EXPECT_EQ(pool.pick_server(later), 1u);
}

TEST(UpstreamPool, AllDownStillPicksOne) {
    const auto u = three_servers();
    proxy::upstream_pool pool(u);
    const auto now = proxy::clock::now();
    for (std::size_t i = 0; i < 3; ++i) pool.mark_down(i, now);
    const auto a = pool.pick_server(now);
    const auto b = pool.pick_server(now);
    EXPECT_NE(a, b);
}

TEST(UpstreamPool, EmptyPoolGivesNothing) {
    const auto u = three_servers();
    proxy::upstream_pool pool(u);
    EXPECT_EQ(pool.take(0, proxy::clock::now()), nullptr);
    EXPECT_EQ(pool.idle_count(), 0u);
}
