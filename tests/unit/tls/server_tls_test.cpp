// A listener's TLS as compiled from its configuration, exercised with in-memory handshakes:
// profiles, fallback SCSV, server order, ECDSA/RSA and SNI selection, session tickets,
// OCSP staples, and the diagnostics of everything refused.
#include "tls/server_context.hpp"

#include <gtest/gtest.h>

#include "test_pki.hpp"
#include "tls/cert_checks.hpp"
#include "tls/ocsp.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;
using namespace std::chrono_literals;

struct server_pki {
    issued ca = make_ca("Server Test CA");
    issued mail_ec = make_cert(
        cert_spec().named("mail.example.com", "DNS:mail.example.com,DNS:autodiscover.example.com"),
        &ca);
    issued mail_rsa = make_cert(
        cert_spec()
            .named("mail.example.com", "DNS:mail.example.com,DNS:autodiscover.example.com")
            .with_key(key_kind::rsa2048),
        &ca);
    issued other_ec = make_cert(cert_spec().named("owa.example.org", "DNS:*.example.org"), &ca);
};

server_pki& pki() {
    static server_pki p;
    return p;
}

std::string lines(const config::diagnostics& d) {
    std::string out;
    for (const auto& item : d.items()) out += item.to_string() + "\n";
    return out;
}

// A listener configuration with certificate files in a temporary directory.
struct listener {
    temp_dir dir;
    config::listener_tls cfg;
    config::diagnostics diags{"test.yaml"};
    int next_line = 10;

    config::certificate_entry& add(const issued& cert, bool with_chain = true,
                                   mode_t key_mode = 0600) {
        const std::string n = std::to_string(next_line);
        config::certificate_entry e;
        e.cert =
            dir.write("cert" + n + ".pem",
                      pem(cert.cert.get()) + (with_chain ? pem(pki().ca.cert.get()) : ""), 0644);
        e.key = dir.write("key" + n + ".pem", pem(cert.key.get()), key_mode);
        e.cert_mark = {next_line, 19};
        e.key_mark = {next_line, 40};
        ++next_line;
        cfg.certificates.push_back(e);
        return cfg.certificates.back();
    }

    // Listener names are unique per test object unless `exact`: ticket keys and session id
    // contexts belong to a listener name.
    server_tls make(const std::string& name = "test", bool exact = false) {
        return make_server_tls(
            cfg, exact ? name : name + std::to_string(reinterpret_cast<std::uintptr_t>(this)),
            diags);
    }
};

TEST(ServerTls, IntermediateProfileServesEcdsaAndRsaByClientCapability) {
    listener l;
    l.add(pki().mail_ec);
    l.add(pki().mail_rsa);
    auto tls = l.make();
    ASSERT_TRUE(tls.context) << lines(l.diags);
    EXPECT_EQ(lines(l.diags), "");
    SSL_CTX* ctx = tls.context->native_handle();

    auto ec = handshake(ctx, client_options().with_sigalgs("ECDSA+SHA256"));
    ASSERT_TRUE(ec.ok);
    EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(ec.peer.get())), EVP_PKEY_EC);
    auto rsa = handshake(ctx, client_options().with_sigalgs("RSA-PSS+SHA256:RSA+SHA256"));
    ASSERT_TRUE(rsa.ok);
    EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(rsa.peer.get())), EVP_PKEY_RSA);
    EXPECT_EQ(rsa.version, "TLSv1.3");

    ASSERT_EQ(tls.certificates.size(), 2u);
    EXPECT_TRUE(tls.certificates[0].starts_with(
        "subject CN=mail.example.com; SANs DNS:mail.example.com,DNS:autodiscover.example.com; key "
        "EC P-256 (256 bits); signature ecdsa-with-SHA256; not after "))
        << tls.certificates[0];
    EXPECT_NE(tls.certificates[1].find("; key RSA 2048 bits;"), std::string::npos);
}

TEST(ServerTls, ServerOrderAndFallbackScsv) {
    listener l;
    l.add(pki().mail_ec);
    auto tls = l.make();
    ASSERT_TRUE(tls.context);
    SSL_CTX* ctx = tls.context->native_handle();
    auto tls12 = handshake(ctx, client_options()
                                    .with_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:"
                                                  "ECDHE-ECDSA-AES128-GCM-SHA256")
                                    .up_to(TLS1_2_VERSION));
    ASSERT_TRUE(tls12.ok);
    EXPECT_EQ(tls12.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    auto tls13 = handshake(
        ctx, client_options().with_suites("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"));
    ASSERT_TRUE(tls13.ok);
    EXPECT_EQ(tls13.cipher, "TLS_AES_128_GCM_SHA256");
    // A client preferring ChaCha20 gets it.
    auto chacha = handshake(
        ctx, client_options().with_suites("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"));
    EXPECT_EQ(chacha.cipher, "TLS_CHACHA20_POLY1305_SHA256");
    // A downgraded retry while the server speaks TLS 1.3: inappropriate_fallback.
    EXPECT_FALSE(handshake(ctx, client_options().up_to(TLS1_2_VERSION).scsv()).ok);
    EXPECT_TRUE(handshake(ctx, client_options().up_to(TLS1_2_VERSION)).ok);
    EXPECT_FALSE(
        handshake(ctx, client_options().with_ciphers("AES128-GCM-SHA256").up_to(TLS1_2_VERSION))
            .ok);
}

TEST(ServerTls, ModernIsTls13Only) {
    listener l;
    l.cfg.profile = config::tls_profile::modern;
    l.add(pki().mail_ec);
    auto tls = l.make();
    ASSERT_TRUE(tls.context);
    EXPECT_FALSE(
        handshake(tls.context->native_handle(), client_options().up_to(TLS1_2_VERSION)).ok);
    EXPECT_EQ(handshake(tls.context->native_handle()).version, "TLSv1.3");
}

TEST(ServerTls, SniChoosesAmongNameGroups) {
    listener l;
    l.add(pki().mail_ec);
    l.add(pki().mail_rsa);
    l.add(pki().other_ec);
    auto tls = l.make();
    ASSERT_TRUE(tls.context) << lines(l.diags);
    SSL_CTX* ctx = tls.context->native_handle();
    auto subject = [&](const client_options& o) {
        auto r = handshake(ctx, o);
        return r.ok ? subject_of(r.peer.get()) : "failed";
    };
    EXPECT_EQ(subject(client_options().server_name("owa.example.org")), "CN=owa.example.org");
    EXPECT_EQ(subject(client_options().server_name("OWA.Example.ORG")), "CN=owa.example.org");
    EXPECT_EQ(subject(client_options().server_name("autodiscover.example.com")),
              "CN=mail.example.com");
    // No SNI, or a name nobody carries: the first group.
    EXPECT_EQ(subject({}), "CN=mail.example.com");
    EXPECT_EQ(subject(client_options().server_name("unknown.example.net")), "CN=mail.example.com");
    // ECDSA and RSA still picked by capability within the chosen group.
    auto rsa = handshake(
        ctx, client_options().server_name("mail.example.com").with_sigalgs("RSA-PSS+SHA256"));
    EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(rsa.peer.get())), EVP_PKEY_RSA);
    // A client of the second group gets no RSA certificate there: the group has none.
    EXPECT_FALSE(
        handshake(ctx,
                  client_options().server_name("owa.example.org").with_sigalgs("RSA-PSS+SHA256"))
            .ok);
}

TEST(ServerTls, SessionTicketsResumeAcrossReloads) {
    listener l;
    l.add(pki().mail_ec);
    auto first = l.make("resume");
    ASSERT_TRUE(first.context);
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto full = handshake(first.context->native_handle(), client_options().up_to(version));
        ASSERT_TRUE(full.ok);
        EXPECT_FALSE(full.reused);
        EXPECT_EQ(SSL_SESSION_has_ticket(full.session.get()), 1);
        // A reload builds new contexts with the same ticket keys.
        auto reloaded = l.make("resume");
        auto again = handshake(reloaded.context->native_handle(),
                               client_options().up_to(version).resuming(full.session.get()));
        ASSERT_TRUE(again.ok);
        EXPECT_TRUE(again.reused) << version;
    }
}

TEST(ServerTls, TicketsOffStillResumesFromTheCache) {
    listener l;
    l.cfg.session_tickets.mode = config::session_ticket_mode::off;
    l.add(pki().mail_ec);
    auto tls = l.make();
    ASSERT_TRUE(tls.context);
    SSL_CTX* ctx = tls.context->native_handle();
    EXPECT_EQ(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, SSL_OP_NO_TICKET);
    EXPECT_EQ(SSL_CTX_sess_get_cache_size(ctx), session_cache_size);
    auto full = handshake(ctx, client_options().up_to(TLS1_2_VERSION));
    ASSERT_TRUE(full.ok);
    EXPECT_EQ(SSL_SESSION_has_ticket(full.session.get()), 0);
    EXPECT_TRUE(
        handshake(ctx, client_options().up_to(TLS1_2_VERSION).resuming(full.session.get())).reused);
}

TEST(ServerTls, SharedTicketKeyFileResumesOnAnotherInstance) {
    listener a, b;
    const std::string key(80, 'k');
    for (auto* l : {&a, &b}) {
        l->cfg.session_tickets.mode = config::session_ticket_mode::key_file;
        l->cfg.session_tickets.key_file = l->dir.write("ticket.key", key);
        l->add(pki().mail_ec);
    }
    // The same listener name on every instance of the fleet, and the same key file.
    auto ta = a.make("fleet", true);
    auto tb = b.make("fleet", true);
    ASSERT_TRUE(ta.context && tb.context);
    auto full = handshake(ta.context->native_handle(), client_options().up_to(TLS1_2_VERSION));
    EXPECT_TRUE(handshake(tb.context->native_handle(),
                          client_options().up_to(TLS1_2_VERSION).resuming(full.session.get()))
                    .reused);
}

TEST(ServerTls, BadTicketKeyFileIsAnErrorAtItsMark) {
    listener l;
    l.cfg.session_tickets.mode = config::session_ticket_mode::key_file;
    l.cfg.session_tickets.key_file = l.dir.write("ticket.key", std::string(80, 'k'), 0640);
    l.cfg.session_tickets.key_file_mark = {20, 30};
    l.add(pki().mail_ec);
    EXPECT_FALSE(l.make().context);
    EXPECT_EQ(lines(l.diags), "test.yaml:20:30: error: session ticket key file '" +
                                  l.cfg.session_tickets.key_file +
                                  "' is readable by group or others (mode 0640); fix: chmod 600 '" +
                                  l.cfg.session_tickets.key_file + "'\n");
}

TEST(ServerTls, OcspStapleForTheCertificateServed) {
    listener l;
    auto& ec = l.add(pki().mail_ec);
    ec.ocsp_response = l.dir.write(
        "ec.der", make_ocsp({}, pki().mail_ec.cert.get(), pki().ca.cert.get(), pki().ca));
    l.add(pki().mail_rsa);  // no staple for this one
    auto tls = l.make();
    ASSERT_TRUE(tls.context) << lines(l.diags);
    EXPECT_NE(tls.certificates[0].find("; OCSP staple until 20"), std::string::npos);
    SSL_CTX* ctx = tls.context->native_handle();
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto r =
            handshake(ctx, client_options().with_sigalgs("ECDSA+SHA256").up_to(version).ocsp());
        ASSERT_TRUE(r.ok);
        std::string error;
        EXPECT_TRUE(check_ocsp_response(r.staple, pki().mail_ec.cert.get(), pki().ca.cert.get(),
                                        std::time(nullptr), error))
            << error;
    }
    auto rsa = handshake(ctx, client_options().with_sigalgs("RSA-PSS+SHA256").ocsp());
    ASSERT_TRUE(rsa.ok);
    EXPECT_TRUE(rsa.staple.empty());
}

TEST(ServerTls, OcspResponseOfAnotherCertificateIsRefused) {
    listener l;
    auto& ec = l.add(pki().mail_ec);
    ec.ocsp_response = l.dir.write(
        "other.der", make_ocsp({}, pki().other_ec.cert.get(), pki().ca.cert.get(), pki().ca));
    ec.ocsp_mark = {10, 60};
    EXPECT_FALSE(l.make().context);
    EXPECT_EQ(lines(l.diags), "test.yaml:10:60: error: OCSP response '" + *ec.ocsp_response +
                                  "' is refused: it is not a response for certificate "
                                  "'CN=mail.example.com'\n");
}

TEST(ServerTls, OcspNeedsTheIssuerInTheFile) {
    listener l;
    auto& ec = l.add(pki().mail_ec, false);
    ec.ocsp_response = l.dir.write(
        "ec.der", make_ocsp({}, pki().mail_ec.cert.get(), pki().ca.cert.get(), pki().ca));
    EXPECT_FALSE(l.make().context);
    EXPECT_NE(lines(l.diags).find("cannot be checked: the issuer of the certificate is not in"),
              std::string::npos);
}

TEST(ServerTls, RefusedCertificatesAndKeysAreReportedAtTheirMarks) {
    listener l;
    auto weak = make_cert(cert_spec()
                              .named("weak.example.com", "DNS:weak.example.com")
                              .with_key(key_kind::rsa1024)
                              .signed_with(EVP_sha1()),
                          &pki().ca);
    l.add(weak);
    auto& open_key = l.add(pki().mail_ec, true, 0644);
    EXPECT_FALSE(l.make().context);
    EXPECT_EQ(lines(l.diags),
              "test.yaml:10:19: error: certificate 'CN=weak.example.com' is signed with SHA-1 "
              "(ecdsa-with-SHA1): reissue it signed with SHA-256 or better\n"
              "test.yaml:10:19: error: certificate 'CN=weak.example.com' has an RSA key of 1024 "
              "bits (at least 2048 are required)\n"
              "test.yaml:11:40: error: key file '" +
                  open_key.key + "' is readable by group or others (mode 0644); fix: chmod 600 '" +
                  open_key.key + "'\n");
}

TEST(ServerTls, KeyOfAnotherCertificateIsRefused) {
    listener l;
    auto& e = l.add(pki().mail_ec);
    auto other = make_key(key_kind::ec256, true);
    e.key = l.dir.write("wrong.key", pem(other.get()));
    EXPECT_FALSE(l.make().context);
    EXPECT_EQ(lines(l.diags),
              "test.yaml:10:40: error: the private key does not match "
              "certificate 'CN=mail.example.com'\n");
}

TEST(ServerTls, EncryptedKeyWithPassphraseFile) {
    listener l;
    auto& e = l.add(pki().mail_ec);
    e.key = l.dir.write("enc.key", pem(pki().mail_ec.key.get(), "s3cret"));
    e.key_passphrase_file = l.dir.write("pass", "s3cret\n");
    auto tls = l.make();
    ASSERT_TRUE(tls.context) << lines(l.diags);
    EXPECT_TRUE(handshake(tls.context->native_handle()).ok);
}

TEST(ServerTls, SameNamesAndKeyTypeTwiceIsAnError) {
    listener l;
    l.add(pki().mail_ec);
    l.add(pki().mail_ec);
    EXPECT_FALSE(l.make().context);
    EXPECT_NE(lines(l.diags).find("test.yaml:11:19: error: certificate '"), std::string::npos);
    EXPECT_NE(lines(l.diags).find("has the same names and key type as '"), std::string::npos);
}

TEST(ServerTls, ServerNamesNotCoveredWarn) {
    listener l;
    l.add(pki().mail_ec);
    l.cfg.server_names = {{"mail.example.com", {5, 9}}, {"owa.example.com", {5, 27}}};
    auto tls = l.make();
    EXPECT_TRUE(tls.context);
    EXPECT_EQ(lines(l.diags),
              "test.yaml:5:27: warning: server name 'owa.example.com' is not covered by the "
              "subjectAltName of any certificate of this listener\n");
}

TEST(ServerTls, CustomProfileRefusesWeakSuitesUnlessAllowed) {
    listener l;
    l.cfg.profile = config::tls_profile::custom;
    l.cfg.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA:RC4-SHA";
    l.cfg.ciphers_mark = {4, 16};
    l.add(pki().mail_ec);
    EXPECT_FALSE(l.make().context);
    EXPECT_EQ(lines(l.diags),
              "test.yaml:4:16: error: 'ciphers' enables weak cipher suites: ECDHE-ECDSA-AES128-SHA "
              "(CBC), RC4-SHA (RC4); remove them (ECDHE with AES-GCM or ChaCha20-Poly1305 only), "
              "or set allow_weak: true\n");

    listener allowed;
    allowed.cfg = l.cfg;
    allowed.cfg.certificates.clear();
    allowed.cfg.allow_weak = true;
    allowed.add(pki().mail_ec);
    auto tls = allowed.make();
    ASSERT_TRUE(tls.context) << lines(allowed.diags);
    EXPECT_EQ(lines(allowed.diags),
              "test.yaml:4:16: warning: weak cipher suites enabled by allow_weak: "
              "ECDHE-ECDSA-AES128-SHA (CBC), RC4-SHA (RC4)\n");
    auto r =
        handshake(tls.context->native_handle(),
                  client_options().with_ciphers("ECDHE-ECDSA-AES128-SHA").up_to(TLS1_2_VERSION));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.cipher, "ECDHE-ECDSA-AES128-SHA");
    // Never below TLS 1.2, whatever the suites.
    EXPECT_EQ(SSL_CTX_get_min_proto_version(tls.context->native_handle()), TLS1_2_VERSION);
}

TEST(ServerTls, CustomProfileWithCleanSuites) {
    listener l;
    l.cfg.profile = config::tls_profile::custom;
    l.cfg.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    l.cfg.ciphersuites = "TLS_AES_256_GCM_SHA384";
    l.add(pki().mail_ec);
    auto tls = l.make();
    ASSERT_TRUE(tls.context) << lines(l.diags);
    EXPECT_EQ(lines(l.diags), "");
    EXPECT_EQ(handshake(tls.context->native_handle()).cipher, "TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(
        handshake(tls.context->native_handle(), client_options().up_to(TLS1_2_VERSION)).cipher,
        "ECDHE-ECDSA-AES256-GCM-SHA384");
}

}  // namespace
}  // namespace mailgate::tls
