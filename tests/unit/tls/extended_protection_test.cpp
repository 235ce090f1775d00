// R19: whether the upstream's certificate is the one mailgate presents for the names clients
// use (the network part is covered by tests/e2e/test_77_extended_protection.py).
#include "tls/extended_protection.hpp"

#include <gtest/gtest.h>

#include "test_pki.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;

struct ep_pki {
    issued ca = make_ca("EP CA");
    issued mail_ec = make_cert(cert_spec().named("mail.example.com", "DNS:mail.example.com"), &ca);
    issued mail_rsa = make_cert(
        cert_spec().named("mail.example.com", "DNS:mail.example.com").with_key(key_kind::rsa2048),
        &ca);
    issued wildcard = make_cert(cert_spec().named("*.example.com", "DNS:*.example.com"), &ca);
    issued exchange = make_cert(
        cert_spec().named("exch01.corp.local", "DNS:exch01.corp.local,DNS:mail.example.com"), &ca);
};

ep_pki& pki() {
    static ep_pki p;
    return p;
}

std::vector<own_certificate> own(std::initializer_list<X509*> certs) {
    std::vector<own_certificate> out;
    for (X509* c : certs) out.push_back({"public", up_ref(c)});
    return out;
}

TEST(ExtendedProtection, FingerprintIsTheSha256OfTheDer) {
    X509* c = pki().mail_ec.cert.get();
    unsigned char* der = nullptr;
    const int len = i2d_X509(c, &der);
    ASSERT_GT(len, 0);
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(der, static_cast<std::size_t>(len), md, &md_len, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    std::string expected;
    for (unsigned int i = 0; i < md_len; ++i) {
        if (i > 0) expected += ':';
        expected += "0123456789ABCDEF"[md[i] >> 4];
        expected += "0123456789ABCDEF"[md[i] & 0x0f];
    }
    EXPECT_EQ(sha256_fingerprint(c), expected);
    EXPECT_EQ(expected.size(), 95u);
}

TEST(ExtendedProtection, TheSameCertificateIsSame) {
    auto r = compare_certificates(pki().mail_ec.cert.get(), own({pki().mail_ec.cert.get()}),
                                  {"mail.example.com"});
    EXPECT_TRUE(r.same) << r.difference;
    // Names are compared case-insensitively.
    r = compare_certificates(pki().mail_ec.cert.get(), own({pki().mail_ec.cert.get()}),
                             {"MAIL.example.COM"});
    EXPECT_TRUE(r.same) << r.difference;
}

TEST(ExtendedProtection, AnotherCertificateForTheNameDiffers) {
    const auto r = compare_certificates(pki().exchange.cert.get(), own({pki().mail_ec.cert.get()}),
                                        {"mail.example.com"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("presents certificate SHA-256 " +
                                sha256_fingerprint(pki().exchange.cert.get()) +
                                " (CN=exch01.corp.local), but mailgate presents SHA-256 " +
                                sha256_fingerprint(pki().mail_ec.cert.get()) +
                                " (CN=mail.example.com, listener 'public') for "
                                "'mail.example.com'"),
              std::string::npos)
        << r.difference;
}

TEST(ExtendedProtection, AWildcardCoversOneLabel) {
    auto r = compare_certificates(pki().exchange.cert.get(), own({pki().wildcard.cert.get()}),
                                  {"mail.example.com"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("but mailgate presents"), std::string::npos) << r.difference;
    r = compare_certificates(pki().exchange.cert.get(), own({pki().wildcard.cert.get()}),
                             {"a.mail.example.com"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("none of them covers 'a.mail.example.com'"), std::string::npos)
        << r.difference;
}

TEST(ExtendedProtection, TwoCertificatesForTheNameDifferEvenIfOneIsTheSame) {
    // ECDSA and RSA for one name: clients may be given the one Exchange does not have.
    const auto r = compare_certificates(pki().mail_ec.cert.get(),
                                        own({pki().mail_ec.cert.get(), pki().mail_rsa.cert.get()}),
                                        {"mail.example.com"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("clients may be given either"), std::string::npos) << r.difference;
    EXPECT_NE(r.difference.find(sha256_fingerprint(pki().mail_rsa.cert.get())), std::string::npos);
}

TEST(ExtendedProtection, WithoutACertificateForTheNameAnyOfMailgatesCertificatesWillDo) {
    // The only certificate of mailgate's for exch01.corp.local is the upstream's.
    auto r = compare_certificates(pki().exchange.cert.get(),
                                  own({pki().mail_rsa.cert.get(), pki().exchange.cert.get()}),
                                  {"exch01.corp.local"});
    EXPECT_TRUE(r.same) << r.difference;
    // None covers the internal name, but the upstream presents one of mailgate's.
    r = compare_certificates(pki().mail_ec.cert.get(), own({pki().mail_ec.cert.get()}),
                             {"exch01.corp.local"});
    EXPECT_TRUE(r.same) << r.difference;
    // None covers it, and the upstream's is none of mailgate's.
    r = compare_certificates(pki().wildcard.cert.get(), own({pki().mail_ec.cert.get()}),
                             {"exch01.corp.local"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("which is none of mailgate's certificates (SHA-256 " +
                                sha256_fingerprint(pki().mail_ec.cert.get()) +
                                " (CN=mail.example.com, listener 'public')), and none of them "
                                "covers 'exch01.corp.local'"),
              std::string::npos)
        << r.difference;
}

TEST(ExtendedProtection, ACertificateListedTwiceCountsOnce) {
    const auto r = compare_certificates(pki().mail_ec.cert.get(),
                                        own({pki().mail_ec.cert.get(), pki().mail_ec.cert.get()}),
                                        {"mail.example.com"});
    EXPECT_TRUE(r.same) << r.difference;
}

TEST(ExtendedProtection, NoCertificateAtAll) {
    const auto r = compare_certificates(pki().mail_ec.cert.get(), {}, {"mail.example.com"});
    EXPECT_FALSE(r.same);
    EXPECT_NE(r.difference.find("mailgate has no certificate"), std::string::npos);
}

}  // namespace
}  // namespace mailgate::tls
