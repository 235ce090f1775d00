// The shapes the Exchange shields judge: the decoded URI and strict autodiscover.json (R22),
// against the vectors of EXCHANGE-PROTOCOL.md section 7.
#include <gtest/gtest.h>

#include "policy/policy.hpp"

using namespace mailgate::policy;

TEST(DecodeUri, DecodesTwiceAndFoldsCase) {
    EXPECT_EQ(decode_uri("/owa/x", "a=%2550owerShell&b=%40"), "/owa/x?a=powershell&b=@");
    EXPECT_EQ(decode_uri("/autodiscover/autodiscover.json", "@x/PowerShell/?%3F"),
              "/autodiscover/autodiscover.json?@x/powershell/??");
    EXPECT_EQ(decode_uri("/a%40b", ""), "/a@b");
    EXPECT_EQ(decode_uri("/a", "x=%zz%4"), "/a?x=%zz%4");  // invalid escapes kept
    EXPECT_EQ(decode_uri("/a", "x=a+b"), "/a?x=a+b");      // '+' is not a space here
}

TEST(AutodiscoverJson, LegitimateShapesPass) {
    constexpr auto path = "/autodiscover/autodiscover.json";
    // L2
    EXPECT_FALSE(autodiscover_json_malformed(
        path, "Email=williamdes%40wdes.fr&Protocol=ActiveSync&RedirectCount=1"));
    EXPECT_FALSE(autodiscover_json_malformed(path, "Email=user@example.com"));
    EXPECT_FALSE(autodiscover_json_malformed(path, "protocol=Rest&email=a.b@c-d.example"));
    // L3 and D1 (allowed: a well-formed address in the path form, the default decision)
    EXPECT_FALSE(autodiscover_json_malformed(
        "/autodiscover/autodiscover.json/v1.0/user@example.com", "Protocol=ActiveSync"));
    EXPECT_FALSE(autodiscover_json_malformed("/autodiscover/autodiscover.json/v1.0/aa@x.example",
                                             "Protocol=Autodiscoverv1"));
    // Other paths are not judged.
    EXPECT_FALSE(autodiscover_json_malformed("/autodiscover/autodiscover.xml", "@x"));
    EXPECT_FALSE(autodiscover_json_malformed("/owa/", "@x"));
}

TEST(AutodiscoverJson, AttackShapesAreMalformed) {
    constexpr auto path = "/autodiscover/autodiscover.json";
    // A1, A2, A3
    EXPECT_TRUE(autodiscover_json_malformed(
        path, "@foo.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@foo.com"));
    EXPECT_TRUE(autodiscover_json_malformed(
        path,
        "@evil.com/powershell/?X-Rps-CAT=VgEAVAdXaW5kb3dz&Email=autodiscover/"
        "autodiscover.json%3F@evil.com"));
    EXPECT_TRUE(autodiscover_json_malformed(
        path, "@test.com/owa/?&Email=autodiscover/autodiscover.json%3F@test.com"));
    EXPECT_TRUE(autodiscover_json_malformed(path, ""));                         // no Email
    EXPECT_TRUE(autodiscover_json_malformed(path, "Email=a@b.c&Email=d@e.f"));  // twice
    EXPECT_TRUE(autodiscover_json_malformed(path, "Email=a@b.c&X=1"));          // unknown key
    EXPECT_TRUE(autodiscover_json_malformed(path, "Email=a/b@c.d"));            // '/' in local
    EXPECT_TRUE(autodiscover_json_malformed(path, "Email=a@b.c&RedirectCount=100"));
    EXPECT_TRUE(autodiscover_json_malformed(path, "Email=a@b.c&Protocol=Power%20Shell"));
    // ProxyShell variant payloads on the path form
    EXPECT_TRUE(autodiscover_json_malformed(
        "/autodiscover/autodiscover.json/v1.0/aa..@x/owa/",
        "&Email=autodiscover/autodiscover.json?a..@x&Protocol=Autodiscoverv1&Protocol=Powershell"));
    EXPECT_TRUE(autodiscover_json_malformed("/autodiscover/autodiscover.json/v1.0/aa@x.example",
                                            "Protocol=A&Protocol=B"));
    EXPECT_TRUE(autodiscover_json_malformed("/autodiscover/autodiscover.json/v1.0/aa@x.example",
                                            "Email=a@b.c"));
    EXPECT_TRUE(autodiscover_json_malformed("/autodiscover/autodiscover.json/other", ""));
}
