// R12: internal names in a 451's X-MS-Location never reach the client.
#include "http/ms_location.hpp"

#include <gtest/gtest.h>

using namespace mailgate::http;

namespace {
const std::vector<std::string> internal{"mbx01.corp.example", "exchange.internal"};
}

TEST(MsLocation, InternalHosts) {
    EXPECT_TRUE(is_internal_host("MBX01.corp.example", internal));
    EXPECT_TRUE(is_internal_host("mbx01", internal));
    EXPECT_TRUE(is_internal_host("mbx01.corp.local", internal));
    EXPECT_TRUE(is_internal_host("mail.contoso.lan", internal));
    EXPECT_TRUE(is_internal_host("10.0.0.11", internal));
    EXPECT_TRUE(is_internal_host("192.168.1.5", internal));
    EXPECT_TRUE(is_internal_host("[fd00::1]", internal));
    EXPECT_TRUE(is_internal_host("127.0.0.1", internal));
    EXPECT_FALSE(is_internal_host("mail.contoso.com", internal));
    EXPECT_FALSE(is_internal_host("outlook.office365.com", internal));
    EXPECT_FALSE(is_internal_host("203.0.113.7", internal));
}

TEST(MsLocation, RewritesOnlyInternalLocations) {
    EXPECT_EQ(rewrite_ms_location("https://mbx01.corp.local/Microsoft-Server-ActiveSync", internal,
                                  "mail.example.com"),
              "https://mail.example.com/Microsoft-Server-ActiveSync");
    EXPECT_EQ(rewrite_ms_location("HTTPS://MBX01.corp.example:444/Microsoft-Server-ActiveSync?x=1",
                                  internal, "mail.example.com:8443"),
              "https://mail.example.com:8443/Microsoft-Server-ActiveSync?x=1");
    EXPECT_EQ(rewrite_ms_location("http://10.0.0.11", internal, "mail.example.com"),
              "https://mail.example.com/");
    EXPECT_EQ(rewrite_ms_location("https://user@mail.contoso.com/x", internal, "m.example.com"),
              "https://m.example.com/x");
    // A real cross-organisation redirect passes unchanged.
    EXPECT_EQ(rewrite_ms_location("https://outlook.office365.com/Microsoft-Server-ActiveSync",
                                  internal, "mail.example.com"),
              std::nullopt);
    EXPECT_EQ(rewrite_ms_location("/relative", internal, "mail.example.com"), std::nullopt);
}
