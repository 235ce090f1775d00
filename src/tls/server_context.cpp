#include "tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace mailgate::tls {
namespace ssl = boost::asio::ssl;

namespace {

// Mozilla "intermediate" 5.7/6.0 TLS 1.2 suites: ECDHE + AEAD only.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* groups = "X25519:P-256:P-384";

}  // namespace

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? std::string("unknown OpenSSL error") : out;
}

std::shared_ptr<ssl::context> make_server_context(const config::listener_tls& cfg,
                                                  config::diagnostics& diags) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    ERR_clear_error();

    SSL_CTX_set_min_proto_version(native, cfg.profile == config::tls_profile::modern
                                              ? TLS1_3_VERSION
                                              : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                    SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                                    SSL_OP_NO_TLSv1_1 | SSL_OP_SINGLE_ECDH_USE);
    // Idle keep-alive connections and held long-polls give their record buffers back.
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(native, tls13_suites) != 1 ||
        SSL_CTX_set1_groups_list(native, groups) != 1) {
        diags.error(cfg.mark, "cannot apply the TLS profile: " + openssl_errors());
        return nullptr;
    }

    bool ok = true;
    for (const auto& c : cfg.certificates) {
        // Each key type (EC, RSA) occupies its own slot in the context; OpenSSL serves the
        // one the client's signature algorithms allow.
        if (SSL_CTX_use_certificate_chain_file(native, c.cert.c_str()) != 1) {
            diags.error(c.cert_mark, "cannot load certificate chain '" + c.cert +
                                         "': " + openssl_errors());
            ok = false;
            continue;
        }
        if (SSL_CTX_use_PrivateKey_file(native, c.key.c_str(), SSL_FILETYPE_PEM) != 1) {
            diags.error(c.key_mark,
                        "cannot load private key '" + c.key + "': " + openssl_errors());
            ok = false;
            continue;
        }
        if (SSL_CTX_check_private_key(native) != 1) {
            diags.error(c.key_mark, "private key '" + c.key + "' does not match certificate '" +
                                        c.cert + "'");
            ok = false;
        }
    }
    return ok ? ctx : nullptr;
}

}  // namespace mailgate::tls
