#include "tls/client_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include "tls/cert_checks.hpp"
#include "tls/key_files.hpp"
#include "tls/server_context.hpp"

namespace mailgate::tls {
namespace ssl = boost::asio::ssl;

namespace {

// The client certificate for mTLS to the upstream: the same key rules as a listener's.
bool use_client_certificate(SSL_CTX* ctx, const config::upstream_tls& cfg,
                            config::diagnostics& diags) {
    std::string error;
    auto chain = read_certificate_chain(*cfg.client_cert, error);
    if (chain.empty()) {
        diags.error(cfg.client_cert_mark,
                    "cannot load client certificate '" + *cfg.client_cert + "': " + error);
    }
    auto key = load_private_key(*cfg.client_key, std::nullopt);
    if (!key.key) diags.error(cfg.client_key_mark, key.error);
    if (chain.empty() || !key.key) return false;
    bool ok = true;
    for (auto& f : check_certificate_entry(chain, key.key.get(), std::time(nullptr), false)) {
        const auto mark =
            f.about == finding::subject::key ? cfg.client_key_mark : cfg.client_cert_mark;
        if (f.lvl == finding::level::error) {
            diags.error(mark, f.message);
            ok = false;
        } else {
            diags.warning(mark, f.message);
        }
    }
    if (!ok) return false;
    ERR_clear_error();
    ok = SSL_CTX_use_certificate(ctx, chain.front().get()) == 1;
    for (std::size_t i = 1; ok && i < chain.size(); ++i) {
        ok = SSL_CTX_add1_chain_cert(ctx, chain[i].get()) == 1;
    }
    if (!ok) {
        diags.error(cfg.client_cert_mark, "cannot use client certificate '" + *cfg.client_cert +
                                              "': " + openssl_errors());
        return false;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        diags.error(cfg.client_key_mark, "cannot use client key '" + *cfg.client_key + "'");
        return false;
    }
    return true;
}

}  // namespace

std::shared_ptr<ssl::context> make_client_context(const config::upstream_tls& cfg,
                                                  config::diagnostics& diags) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    // Only `insecure_skip_verify: true` turns this off, and that is warned about.
    SSL_CTX_set_verify(native, cfg.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       nullptr);
    const int loaded = cfg.ca ? SSL_CTX_load_verify_locations(native, cfg.ca->c_str(), nullptr)
                              : SSL_CTX_set_default_verify_paths(native);
    if (loaded != 1) {
        diags.error(cfg.ca_mark, "cannot load CA bundle" + (cfg.ca ? " '" + *cfg.ca + "'" : "") +
                                     ": " + openssl_errors());
        return nullptr;
    }
    if (cfg.client_cert && cfg.client_key && !use_client_certificate(native, cfg, diags)) {
        return nullptr;
    }
    return ctx;
}

bool prepare_client_stream(SSL* s, const std::string& server_name) {
    boost::system::error_code ec;
    const auto ip = boost::asio::ip::make_address(server_name, ec);
    X509_VERIFY_PARAM* param = SSL_get0_param(s);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!ec) {
        // An IP address is verified against iPAddress SANs and is never sent as SNI.
        return X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1;
    }
    (void)ip;
    return SSL_set_tlsext_host_name(s, server_name.c_str()) == 1 &&
           SSL_set1_host(s, server_name.c_str()) == 1;
}

std::string describe_handshake_failure(SSL* stream, const boost::system::error_code& ec) {
    const long verify = SSL_get_verify_result(stream);
    if (verify != X509_V_OK && SSL_get_verify_mode(stream) != SSL_VERIFY_NONE) {
        return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    }
    return ec.message();
}

}  // namespace mailgate::tls
