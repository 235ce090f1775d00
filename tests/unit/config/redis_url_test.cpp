#include "config/redis_url.hpp"

#include <gtest/gtest.h>

namespace mailgate::config {
namespace {

redis_endpoint parsed(std::string_view url) {
    std::string why;
    auto ep = parse_redis_url(url, why);
    EXPECT_TRUE(ep) << url << ": " << why;
    return ep.value_or(redis_endpoint{});
}

std::string refused(std::string_view url) {
    std::string why;
    EXPECT_FALSE(parse_redis_url(url, why)) << url;
    return why;
}

TEST(RedisUrl, HostPortDatabaseAndPassword) {
    auto ep = parsed("redis://127.0.0.1:6380/2");
    EXPECT_EQ(ep.host, "127.0.0.1");
    EXPECT_EQ(ep.port, 6380);
    EXPECT_EQ(ep.db, 2u);
    EXPECT_EQ(ep.password, "");

    ep = parsed("redis://:s3cr@t@redis.internal");
    EXPECT_EQ(ep.password, "s3cr@t");  // the last '@' ends the credentials
    EXPECT_EQ(ep.host, "redis.internal");
    EXPECT_EQ(ep.port, 6379);
    EXPECT_EQ(ep.db, 0u);

    ep = parsed("redis://[::1]:7000/");
    EXPECT_EQ(ep.host, "::1");
    EXPECT_EQ(ep.port, 7000);
}

TEST(RedisUrl, BadUrlsSayWhy) {
    EXPECT_EQ(refused("http://x"), "expected redis://host:port/db");
    EXPECT_EQ(refused("redis://"), "no host");
    EXPECT_EQ(refused("redis://:pw@:6379"), "no host");
    EXPECT_EQ(refused("redis://h:0"), "port must be a number from 1 to 65535");
    EXPECT_EQ(refused("redis://h:65536"), "port must be a number from 1 to 65535");
    EXPECT_EQ(refused("redis://h:6379x"), "port must be a number from 1 to 65535");
    EXPECT_EQ(refused("redis://h/16"), "database must be a number from 0 to 15");
    EXPECT_EQ(refused("redis://h/-1"), "database must be a number from 0 to 15");
    EXPECT_EQ(refused("redis://user:pw@h"),
              "credentials must be written ':password@' (no user name)");
    EXPECT_EQ(refused("redis://[::1"), "unclosed '[' in the host");
    EXPECT_EQ(refused("redis://[::1]x"), "expected ':port' after ']'");
}

TEST(RedisUrl, LoopbackHosts) {
    EXPECT_TRUE(is_loopback_host("localhost"));
    EXPECT_TRUE(is_loopback_host("127.0.0.1"));
    EXPECT_TRUE(is_loopback_host("127.5.6.7"));
    EXPECT_TRUE(is_loopback_host("::1"));
    EXPECT_FALSE(is_loopback_host("10.0.0.1"));
    EXPECT_FALSE(is_loopback_host("::ffff:10.0.0.1"));
    EXPECT_FALSE(is_loopback_host("redis.internal"));
    EXPECT_FALSE(is_loopback_host("128.0.0.1"));
}

}  // namespace
}  // namespace mailgate::config
