// `profile: custom` cipher lists: what `check` refuses unless allow_weak.
#include "tls/cipher_policy.hpp"

#include <gtest/gtest.h>

namespace mailgate::tls {
namespace {

std::string weak(const std::string& list) {
    const auto r = check_tls12_ciphers(list);
    std::string out = r.error.empty() ? "" : "error: " + r.error + "\n";
    for (const auto& w : r.weak) out += w + "\n";
    return out;
}

TEST(CipherPolicy, TheIntermediateListIsClean) {
    EXPECT_EQ(weak(intermediate_tls12_ciphers), "");
    EXPECT_EQ(weak("ECDHE-ECDSA-AES256-GCM-SHA384:!RC4:!aNULL:-3DES"), "");
}

TEST(CipherPolicy, EachWeakFamilyIsNamed) {
    EXPECT_EQ(weak("AES128-SHA"), "AES128-SHA (static RSA key exchange, CBC)\n");
    EXPECT_EQ(weak("AES128-GCM-SHA256"), "AES128-GCM-SHA256 (static RSA key exchange)\n");
    EXPECT_EQ(weak("ECDHE-RSA-AES128-SHA256"), "ECDHE-RSA-AES128-SHA256 (CBC)\n");
    // Whether OpenSSL still has 3DES depends on its build; either way it is named.
    EXPECT_TRUE(weak("DES-CBC3-SHA").starts_with("DES-CBC3-SHA (3DES")) << weak("DES-CBC3-SHA");
    EXPECT_EQ(weak("ADH-AES128-GCM-SHA256"), "ADH-AES128-GCM-SHA256 (anonymous)\n");
    EXPECT_EQ(weak("ECDHE-RSA-NULL-SHA"), "ECDHE-RSA-NULL-SHA (NULL encryption)\n");
    EXPECT_EQ(weak("ECDHE-RSA-AES128-GCM-SHA256:PSK-AES128-GCM-SHA256"),
              "PSK-AES128-GCM-SHA256 (no forward secrecy)\n");
}

TEST(CipherPolicy, WeakFamiliesOpenSslNoLongerHasAreStillReported) {
    // RC4 and EXPORT suites are gone from OpenSSL 3's default provider: OpenSSL would
    // silently drop them, but the operator asked for them.
    EXPECT_EQ(weak("ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA"), "RC4-SHA (RC4)\n");
    EXPECT_EQ(weak("ECDHE-RSA-AES128-GCM-SHA256:EXPORT"), "EXPORT (EXPORT)\n");
    EXPECT_EQ(weak("RC4-MD5"), "RC4-MD5 (RC4, MD5)\n");
}

TEST(CipherPolicy, AliasesAreJudgedByWhatTheyEnable) {
    const auto r = check_tls12_ciphers("HIGH:!aNULL");
    EXPECT_TRUE(r.error.empty());
    bool cbc = false, static_rsa = false;
    for (const auto& w : r.weak) {
        if (w.find("CBC") != std::string::npos) cbc = true;
        if (w.find("static RSA") != std::string::npos) static_rsa = true;
    }
    EXPECT_TRUE(cbc);
    EXPECT_TRUE(static_rsa);
}

TEST(CipherPolicy, NothingMatchingIsAnError) {
    EXPECT_EQ(weak("NO-SUCH-CIPHER"), "error: no TLS 1.2 cipher suite matches it\n");
}

TEST(CipherPolicy, Tls13Suites) {
    EXPECT_EQ(check_tls13_suites("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"), "");
    EXPECT_NE(check_tls13_suites("TLS_AES_512_GCM"), "");
}

}  // namespace
}  // namespace mailgate::tls
