// The certificate checks of `mailgate check`: each refusal and warning, made with
// certificates of exactly that kind.
#include "tls/cert_checks.hpp"

#include <gtest/gtest.h>

#include "test_pki.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;

struct fixture {
    issued root = make_ca("Test Root CA");
    issued intermediate = make_ca("Test Intermediate CA", &root);
};

fixture& pki() {
    static fixture f;
    return f;
}

std::string all(const std::vector<finding>& findings) {
    std::string out;
    for (const auto& f : findings) {
        out += f.lvl == finding::level::error ? "error: " : "warning: ";
        out += f.message + "\n";
    }
    return out;
}

std::vector<finding> errors(const std::vector<finding>& findings) {
    std::vector<finding> out;
    for (const auto& f : findings)
        if (f.lvl == finding::level::error) out.push_back(f);
    return out;
}

// A leaf from the intermediate, with the intermediate in the file.
std::vector<finding> check_leaf(const cert_spec& spec, bool with_key = true) {
    auto leaf = make_cert(spec, &pki().intermediate);
    return check_certificate_entry(chain_of({leaf.cert.get(), pki().intermediate.cert.get()}),
                                   with_key ? leaf.key.get() : nullptr, std::time(nullptr));
}

TEST(CertChecks, AGoodChainHasNoFindings) {
    EXPECT_EQ(all(check_leaf({})), "");
    cert_spec rsa;
    rsa.key = key_kind::rsa2048;
    EXPECT_EQ(all(check_leaf(rsa)), "");
    cert_spec p384;
    p384.key = key_kind::ec384;
    p384.md = EVP_sha384();
    EXPECT_EQ(all(check_leaf(p384)), "");
}

TEST(CertChecks, Sha1LeafIsRefused) {
    cert_spec s;
    s.md = EVP_sha1();
    const auto f = errors(check_leaf(s));
    ASSERT_EQ(f.size(), 1u) << all(f);
    EXPECT_EQ(f[0].message,
              "certificate 'CN=mail.example.com' is signed with SHA-1 (ecdsa-with-SHA1): reissue "
              "it signed with SHA-256 or better");
}

TEST(CertChecks, Md5LeafIsRefused) {
    cert_spec s;
    s.key = key_kind::rsa2048;
    auto issuer = make_cert(cert_spec().named("RSA CA", "").with_key(key_kind::rsa2048).as_ca());
    s.md = EVP_md5();
    auto leaf = make_cert(s, &issuer);
    const auto f = check_certificate_entry(chain_of({leaf.cert.get(), issuer.cert.get()}),
                                           leaf.key.get(), std::time(nullptr));
    EXPECT_NE(all(f).find("is signed with MD5 (md5WithRSAEncryption)"), std::string::npos)
        << all(f);
}

TEST(CertChecks, Sha1IntermediateIsRefusedButNotASha1Root) {
    auto old_root = make_ca("Old Root", nullptr, EVP_sha1());
    auto sha1_intermediate = make_ca("SHA-1 Intermediate", &old_root, EVP_sha1());
    auto leaf = make_cert({}, &sha1_intermediate);
    const auto f = check_certificate_entry(
        chain_of({leaf.cert.get(), sha1_intermediate.cert.get(), old_root.cert.get()}),
        leaf.key.get(), std::time(nullptr));
    EXPECT_EQ(all(f),
              "error: intermediate 'CN=SHA-1 Intermediate' is signed with SHA-1 "
              "(ecdsa-with-SHA1): reissue it signed with SHA-256 or better\n");
}

TEST(CertChecks, SmallKeysAreRefused) {
    cert_spec rsa;
    rsa.key = key_kind::rsa1024;
    EXPECT_EQ(all(check_leaf(rsa)),
              "error: certificate 'CN=mail.example.com' has an RSA key of 1024 bits (at least "
              "2048 are required)\n");
    cert_spec ec;
    ec.key = key_kind::ec224;
    EXPECT_EQ(all(check_leaf(ec)),
              "error: certificate 'CN=mail.example.com' has an EC key of 224 bits (P-224; at "
              "least 256 are required)\n");
}

TEST(CertChecks, MissingSubjectAltNameIsRefused) {
    cert_spec s;
    s.sans = "";
    EXPECT_EQ(all(check_leaf(s)),
              "error: certificate 'CN=mail.example.com' has no subjectAltName with a DNS name or "
              "IP address: clients ignore the common name, so it matches no host\n");
    s.sans = "email:postmaster@example.com";
    EXPECT_EQ(errors(check_leaf(s)).size(), 1u);
    s.sans = "IP:192.0.2.1";
    EXPECT_EQ(all(check_leaf(s)), "");
}

TEST(CertChecks, ExpiredAndNotYetValidAreRefused) {
    cert_spec expired;
    expired.not_before = -100L * 86400;
    expired.not_after = -86400;
    const auto f = errors(check_leaf(expired));
    ASSERT_EQ(f.size(), 1u);
    EXPECT_TRUE(f[0].message.starts_with("certificate 'CN=mail.example.com' expired on 20"))
        << f[0].message;
    cert_spec future;
    future.not_before = 86400;
    const auto g = errors(check_leaf(future));
    ASSERT_EQ(g.size(), 1u);
    EXPECT_TRUE(g[0].message.starts_with("certificate 'CN=mail.example.com' is not valid before"))
        << g[0].message;
}

TEST(CertChecks, ExpiredIntermediateIsRefused) {
    auto s = cert_spec().named("Expired Intermediate", "").as_ca();
    s.not_before = -100L * 86400;
    s.not_after = -60;
    auto inter = make_cert(s, &pki().root);
    auto leaf = make_cert({}, &inter);
    const auto f = check_certificate_entry(chain_of({leaf.cert.get(), inter.cert.get()}),
                                           leaf.key.get(), std::time(nullptr));
    ASSERT_EQ(errors(f).size(), 1u) << all(f);
    EXPECT_TRUE(f[0].message.starts_with("intermediate 'CN=Expired Intermediate' expired on"));
}

TEST(CertChecks, ExpiryWithin30DaysWarns) {
    cert_spec s;
    s.not_after = 10L * 86400 + 3600;
    const auto f = check_leaf(s);
    ASSERT_EQ(f.size(), 1u) << all(f);
    EXPECT_EQ(f[0].lvl, finding::level::warning);
    EXPECT_TRUE(f[0].message.starts_with("certificate 'CN=mail.example.com' expires in 10 days ("))
        << f[0].message;
    // Judged at the given time: a certificate with 10 days left today had 70 left 60 days ago.
    auto self = make_cert(cert_spec().valid(-90L * 86400, 10L * 86400 + 3600));
    const auto chain = chain_of({self.cert.get()});
    EXPECT_EQ(check_certificate_entry(chain, self.key.get(), std::time(nullptr)).size(), 1u);
    EXPECT_EQ(all(check_certificate_entry(chain, self.key.get(), std::time(nullptr) - 60L * 86400)),
              "");
}

TEST(CertChecks, KeyMismatchIsAboutTheKey) {
    auto leaf = make_cert({}, &pki().intermediate);
    auto other = make_key(key_kind::ec256, true);
    const auto f =
        check_certificate_entry(chain_of({leaf.cert.get(), pki().intermediate.cert.get()}),
                                other.get(), std::time(nullptr));
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].about, finding::subject::key);
    EXPECT_EQ(f[0].message, "the private key does not match certificate 'CN=mail.example.com'");
}

TEST(CertChecks, IncompleteChainWarnsUnlessSelfSigned) {
    auto leaf = make_cert({}, &pki().intermediate);
    const auto f =
        check_certificate_entry(chain_of({leaf.cert.get()}), leaf.key.get(), std::time(nullptr));
    EXPECT_EQ(all(f),
              "warning: chain incomplete: the issuer of certificate 'CN=mail.example.com' "
              "('CN=Test Intermediate CA') is not in the file; if it is an intermediate, append "
              "it after the leaf: clients that lack it cannot verify the certificate\n");
    auto self = make_cert({});
    EXPECT_EQ(all(check_certificate_entry(chain_of({self.cert.get()}), self.key.get(),
                                          std::time(nullptr))),
              "");
}

TEST(CertChecks, ClientCertificatesNeedNoSanAndNoChain) {
    cert_spec s;
    s.sans = "";
    auto leaf = make_cert(s, &pki().intermediate);
    EXPECT_EQ(all(check_certificate_entry(chain_of({leaf.cert.get()}), leaf.key.get(),
                                          std::time(nullptr), false)),
              "");
}

TEST(CertChecks, EveryProblemIsReportedAtOnce) {
    cert_spec s;
    s.key = key_kind::rsa1024;
    s.md = EVP_sha1();
    s.sans = "";
    s.not_after = -60;
    s.not_before = -86400;
    const auto f = errors(check_leaf(s));
    EXPECT_EQ(f.size(), 4u) << all(f);
}

TEST(CertChecks, NamesAndCoverage) {
    auto leaf = make_cert(cert_spec().named(
        "mail.example.com", "DNS:Mail.Example.com,DNS:*.example.net,IP:127.0.0.1,IP:::1"));
    EXPECT_EQ(subject_alt_names(leaf.cert.get()),
              (std::vector<std::string>{"DNS:Mail.Example.com", "DNS:*.example.net", "IP:127.0.0.1",
                                        "IP:::1"}));
    EXPECT_EQ(san_identities(leaf.cert.get()),
              (std::vector<std::string>{"*.example.net", "127.0.0.1", "::1", "mail.example.com"}));
    EXPECT_TRUE(covers(leaf.cert.get(), "mail.example.com"));
    EXPECT_TRUE(covers(leaf.cert.get(), "MAIL.example.com"));
    EXPECT_TRUE(covers(leaf.cert.get(), "autodiscover.example.net"));
    EXPECT_TRUE(covers(leaf.cert.get(), "*.example.net"));
    EXPECT_FALSE(covers(leaf.cert.get(), "a.b.example.net"));
    EXPECT_FALSE(covers(leaf.cert.get(), "example.net"));
    EXPECT_TRUE(covers(leaf.cert.get(), "127.0.0.1"));
    EXPECT_TRUE(covers(leaf.cert.get(), "0:0::1"));
    EXPECT_FALSE(covers(leaf.cert.get(), "127.0.0.2"));
    EXPECT_FALSE(covers(leaf.cert.get(), "owa.example.com"));
}

TEST(CertChecks, HostMatchesOneLabelWildcards) {
    EXPECT_TRUE(host_matches("mail.example.com", "mail.example.com"));
    EXPECT_TRUE(host_matches("*.example.com", "mail.example.com"));
    EXPECT_FALSE(host_matches("*.example.com", "example.com"));
    EXPECT_FALSE(host_matches("*.example.com", ".example.com"));
    EXPECT_FALSE(host_matches("*.example.com", "a.mail.example.com"));
    EXPECT_FALSE(host_matches("m*.example.com", "mail.example.com"));
}

TEST(CertChecks, StartUpLineNamesEverything) {
    cert_spec s;
    s.key = key_kind::rsa2048;
    s.sans = "DNS:mail.example.com,IP:192.0.2.7";
    auto leaf = make_cert(s, &pki().intermediate);
    const std::string line = describe_certificate(leaf.cert.get());
    EXPECT_TRUE(
        line.starts_with("subject CN=mail.example.com; SANs DNS:mail.example.com,"
                         "IP:192.0.2.7; key RSA 2048 bits; signature ecdsa-with-SHA256; "
                         "not after 20"))
        << line;
    EXPECT_TRUE(line.ends_with("Z")) << line;
    auto ec = make_cert({});
    EXPECT_NE(describe_certificate(ec.cert.get()).find("; key EC P-256 (256 bits);"),
              std::string::npos);
}

TEST(CertChecks, ReadsChainsFromPemFiles) {
    temp_dir dir;
    auto leaf = make_cert({}, &pki().intermediate);
    std::string error;
    auto chain = read_certificate_chain(
        dir.write("chain.pem", pem(leaf.cert.get()) + pem(pki().intermediate.cert.get()), 0644),
        error);
    ASSERT_EQ(chain.size(), 2u) << error;
    EXPECT_EQ(X509_cmp(chain[0].get(), leaf.cert.get()), 0);
    EXPECT_TRUE(read_certificate_chain(dir.write("empty.pem", "nothing\n"), error).empty());
    EXPECT_EQ(error, "no PEM certificate in it");
    EXPECT_TRUE(read_certificate_chain((dir.path() / "missing.pem").string(), error).empty());
    EXPECT_EQ(error, "cannot open it");
}

}  // namespace
}  // namespace mailgate::tls
