// The upstream TLS context: verification on unless insecure_skip_verify, and an optional
// client certificate whose key follows the listeners' key rules.
#include "tls/client_context.hpp"

#include <gtest/gtest.h>

#include "test_pki.hpp"
#include "tls/cert_checks.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;

std::string lines(const config::diagnostics& d) {
    std::string out;
    for (const auto& item : d.items()) out += item.to_string() + "\n";
    return out;
}

struct client_pki {
    issued ca = make_ca("Upstream CA");
    issued server = make_cert(cert_spec().named("exchange.internal", "DNS:exchange.internal"), &ca);
    issued client = make_cert(cert_spec().named("mailgate client", ""), &ca);
};

client_pki& pki() {
    static client_pki p;
    return p;
}

// A server that requires a client certificate issued by the test CA.
ssl_ctx_ptr upstream_server() {
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx.get(), pki().server.cert.get());
    SSL_CTX_use_PrivateKey(ctx.get(), pki().server.key.get());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), pki().ca.cert.get());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
}

TEST(ClientContext, VerifiesByDefaultAndOnlyInsecureTurnsItOff) {
    config::upstream_tls cfg;
    config::diagnostics diags("test.yaml");
    auto ctx = make_client_context(cfg, diags);
    ASSERT_TRUE(ctx);
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->native_handle()), SSL_VERIFY_PEER);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->native_handle()), TLS1_2_VERSION);
    cfg.insecure_skip_verify = true;
    auto insecure = make_client_context(cfg, diags);
    ASSERT_TRUE(insecure);
    EXPECT_EQ(SSL_CTX_get_verify_mode(insecure->native_handle()), SSL_VERIFY_NONE);
}

TEST(ClientContext, PresentsItsClientCertificate) {
    temp_dir dir;
    config::upstream_tls cfg;
    cfg.ca = dir.write("ca.pem", pem(pki().ca.cert.get()), 0644);
    cfg.client_cert = dir.write("client.pem", pem(pki().client.cert.get()), 0644);
    cfg.client_key = dir.write("client.key", pem(pki().client.key.get()));
    config::diagnostics diags("test.yaml");
    auto ctx = make_client_context(cfg, diags);
    ASSERT_TRUE(ctx) << lines(diags);
    EXPECT_EQ(lines(diags), "");
    auto server = upstream_server();
    // The handshake helper reports what the client saw; the server refuses a client without
    // a certificate, so success means the certificate was presented and verified.
    auto r = handshake(server.get(), client_options().using_context(ctx->native_handle()));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(subject_of(r.peer.get()), "CN=exchange.internal");

    config::upstream_tls plain;
    plain.ca = cfg.ca;
    auto without = make_client_context(plain, diags);
    EXPECT_FALSE(
        handshake(server.get(), client_options().using_context(without->native_handle())).ok);
}

TEST(ClientContext, ClientKeyMustBeProtectedAndMatch) {
    temp_dir dir;
    config::upstream_tls cfg;
    cfg.client_cert = dir.write("client.pem", pem(pki().client.cert.get()), 0644);
    cfg.client_key = dir.write("client.key", pem(pki().client.key.get()), 0644);
    cfg.client_key_mark = {12, 20};
    config::diagnostics diags("test.yaml");
    EXPECT_FALSE(make_client_context(cfg, diags));
    EXPECT_EQ(lines(diags), "test.yaml:12:20: error: key file '" + *cfg.client_key +
                                "' is readable by group or others (mode 0644); fix: chmod 600 '" +
                                *cfg.client_key + "'\n");

    auto other = make_key(key_kind::ec256, true);
    cfg.client_key = dir.write("other.key", pem(other.get()));
    config::diagnostics mismatch("test.yaml");
    EXPECT_FALSE(make_client_context(cfg, mismatch));
    EXPECT_EQ(lines(mismatch),
              "test.yaml:12:20: error: the private key does not match "
              "certificate 'CN=mailgate client'\n");
}

}  // namespace
}  // namespace mailgate::tls
