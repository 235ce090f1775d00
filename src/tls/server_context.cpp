#include "tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "tls/cert_checks.hpp"
#include "tls/cipher_policy.hpp"
#include "tls/key_files.hpp"
#include "tls/ocsp.hpp"
#include "tls/ticket_keys.hpp"

namespace mailgate::tls {
namespace ssl = boost::asio::ssl;

namespace {

// A session lives at most this long, and never longer than one rotation period, so that
// its ticket is always decryptable (current or previous key) while the session is valid.
constexpr std::chrono::seconds max_session_lifetime{std::chrono::hours(24)};
constexpr std::chrono::seconds fixed_key_session_lifetime{std::chrono::hours(12)};

struct loaded_entry {
    const config::certificate_entry* cfg = nullptr;
    std::vector<x509_ptr> chain;  // leaf first
    pkey_ptr key;
    std::vector<std::string> identities;  // SAN DNS names and IPs: the SNI group
    std::optional<ocsp_staple> staple;
};

// Everything the contexts' callbacks need, alive as long as the default context.
struct listener_state {
    std::vector<std::unique_ptr<ssl::context>> contexts;  // [0]: the default
    std::vector<std::vector<std::string>> identities;     // per context
    std::shared_ptr<ticket_keys> tickets;
    std::vector<std::pair<X509*, ocsp_staple>> staples;  // X509s owned by the contexts

    // The context for a client asking for `host` (lower case): an exact SAN first, then
    // a wildcard; nullptr when no group names it (the default serves).
    SSL_CTX* select(const std::string& host) const {
        for (std::size_t i = 0; i < contexts.size(); ++i) {
            for (const auto& id : identities[i]) {
                if (id == host) return contexts[i]->native_handle();
            }
        }
        for (std::size_t i = 0; i < contexts.size(); ++i) {
            for (const auto& id : identities[i]) {
                if (host_matches(id, host)) return contexts[i]->native_handle();
            }
        }
        return nullptr;
    }
};

int on_servername(SSL* s, int* /*alert*/, void* arg) {
    const auto* state = static_cast<const listener_state*>(arg);
    const char* name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
    std::string host(name);
    for (auto& c : host) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    SSL_CTX* chosen = state->select(host);
    if (chosen == nullptr) return SSL_TLSEXT_ERR_NOACK;
    if (chosen != SSL_get_SSL_CTX(s)) SSL_set_SSL_CTX(s, chosen);
    return SSL_TLSEXT_ERR_OK;
}

// Called once the certificate is chosen: staples the response of that certificate while
// it is current.
int on_status_request(SSL* s, void* arg) {
    const auto* state = static_cast<const listener_state*>(arg);
    X509* cert = SSL_get_certificate(s);
    for (const auto& [x, staple] : state->staples) {
        if (x != cert) continue;
        if (staple.next_update != 0 && std::time(nullptr) > staple.next_update) break;
        auto* copy =
            static_cast<unsigned char*>(OPENSSL_memdup(staple.der.data(), staple.der.size()));
        if (copy == nullptr) break;
        SSL_set_tlsext_status_ocsp_resp(s, copy, static_cast<long>(staple.der.size()));
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

std::string profile_error(SSL_CTX* ctx, const config::listener_tls& cfg) {
    const bool modern = cfg.profile == config::tls_profile::modern;
    const bool custom = cfg.profile == config::tls_profile::custom;
    SSL_CTX_set_min_proto_version(ctx, modern ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                                 SSL_OP_NO_TLSv1_1 | SSL_OP_SINGLE_ECDH_USE);
    // Idle keep-alive connections and held long-polls give their record buffers back.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (custom) {
        // Weak suites were refused by `check` unless allow_weak; what is left must work.
        SSL_CTX_set_security_level(ctx, cfg.allow_weak ? 0 : 1);
        SSL_CTX_set_dh_auto(ctx, 1);
    }
    const std::string ciphers = custom ? cfg.ciphers : intermediate_tls12_ciphers;
    const std::string suites = custom && cfg.ciphersuites ? *cfg.ciphersuites : tls13_suites;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1 ||
        SSL_CTX_set1_groups_list(ctx, key_exchange_groups) != 1) {
        return "cannot apply the TLS profile: " + openssl_errors();
    }
    return {};
}

void set_session_policy(SSL_CTX* ctx, const config::listener_tls& cfg, const std::string& listener,
                        ticket_keys* tickets) {
    // One session id context per listener: a session resumes on the listener that made it,
    // whichever of its contexts SNI picked.
    unsigned char sid[SHA256_DIGEST_LENGTH];
    const std::string label = "mailgate listener " + listener;
    SHA256(reinterpret_cast<const unsigned char*>(label.data()), label.size(), sid);
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, session_cache_size);
    auto lifetime = fixed_key_session_lifetime;
    if (cfg.session_tickets.mode == config::session_ticket_mode::rotate) {
        lifetime =
            std::min(max_session_lifetime,
                     std::chrono::duration_cast<std::chrono::seconds>(cfg.session_tickets.rotate));
    }
    SSL_CTX_set_timeout(ctx, static_cast<long>(lifetime.count()));
    if (tickets == nullptr) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    } else {
        tickets->install(ctx);
    }
}

// Refuses weak suites of a custom profile unless allow_weak; true when usable.
bool check_custom_ciphers(const config::listener_tls& cfg, config::diagnostics& diags) {
    bool ok = true;
    const auto report = check_tls12_ciphers(cfg.ciphers);
    if (!report.error.empty()) {
        diags.error(cfg.ciphers_mark, "invalid 'ciphers' '" + cfg.ciphers + "': " + report.error);
        ok = false;
    }
    if (!report.weak.empty()) {
        std::string list;
        for (const auto& w : report.weak) list += (list.empty() ? "" : ", ") + w;
        if (cfg.allow_weak) {
            diags.warning(cfg.ciphers_mark, "weak cipher suites enabled by allow_weak: " + list);
        } else {
            diags.error(cfg.ciphers_mark,
                        "'ciphers' enables weak cipher suites: " + list +
                            "; remove them (ECDHE with AES-GCM or ChaCha20-Poly1305 only), or set "
                            "allow_weak: true");
            ok = false;
        }
    }
    if (cfg.ciphersuites) {
        if (auto problem = check_tls13_suites(*cfg.ciphersuites); !problem.empty()) {
            diags.error(cfg.ciphersuites_mark,
                        "invalid 'ciphersuites' '" + *cfg.ciphersuites + "': " + problem);
            ok = false;
        }
    }
    return ok;
}

// Reads and checks one certificate entry. nullopt when it cannot be served.
std::optional<loaded_entry> load_entry(const config::certificate_entry& c, std::time_t now,
                                       config::diagnostics& diags,
                                       std::vector<std::string>& lines) {
    if (c.cert.empty() || c.key.empty()) return std::nullopt;  // reported by the loader
    loaded_entry e;
    e.cfg = &c;
    bool ok = true;
    std::string error;
    e.chain = read_certificate_chain(c.cert, error);
    if (e.chain.empty()) {
        diags.error(c.cert_mark, "cannot load certificate chain '" + c.cert + "': " + error);
        ok = false;
    }
    auto key = load_private_key(c.key, c.key_passphrase_file);
    if (!key.key) {
        diags.error(key.passphrase_error ? c.key_passphrase_mark : c.key_mark, key.error);
        ok = false;
    } else if (!key.warning.empty()) {
        diags.warning(c.key_passphrase_mark, key.warning);
    }
    e.key = std::move(key.key);
    if (e.chain.empty()) return std::nullopt;

    for (auto& f : check_certificate_entry(e.chain, e.key.get(), now)) {
        const auto mark = f.about == finding::subject::key ? c.key_mark : c.cert_mark;
        if (f.lvl == finding::level::error) {
            diags.error(mark, f.message);
            ok = false;
        } else {
            diags.warning(mark, f.message);
        }
    }
    X509* leaf = e.chain.front().get();
    std::string line = describe_certificate(leaf);
    if (c.ocsp_response) {
        X509* issuer = X509_self_signed(leaf, 0) == 1 ? leaf : find_issuer(e.chain, leaf);
        ERR_clear_error();
        if (issuer == nullptr) {
            diags.error(c.ocsp_mark, "OCSP response '" + *c.ocsp_response +
                                         "' cannot be checked: the issuer of the certificate is "
                                         "not in '" +
                                         c.cert + "' (append it after the leaf)");
            ok = false;
        } else if (auto staple = load_ocsp_response(*c.ocsp_response, leaf, issuer, now, error)) {
            line += "; OCSP staple" + std::string(staple->next_update != 0 ? " until " : "");
            if (staple->next_update != 0) {
                asn1_time_ptr t(ASN1_TIME_set(nullptr, staple->next_update));
                line += format_time(t.get());
            }
            e.staple = std::move(staple);
        } else {
            diags.error(c.ocsp_mark,
                        "OCSP response '" + *c.ocsp_response + "' is refused: " + error);
            ok = false;
        }
    }
    lines.push_back(std::move(line));
    e.identities = san_identities(leaf);
    if (!ok) return std::nullopt;
    return e;
}

bool install(SSL_CTX* ctx, loaded_entry& e, config::diagnostics& diags) {
    ERR_clear_error();
    // Each key type (EC, RSA) occupies its own slot in the context, with its own chain;
    // OpenSSL serves the one the client's signature algorithms allow.
    bool ok = SSL_CTX_use_certificate(ctx, e.chain.front().get()) == 1;
    for (std::size_t i = 1; ok && i < e.chain.size(); ++i) {
        ok = SSL_CTX_add1_chain_cert(ctx, e.chain[i].get()) == 1;
    }
    if (!ok) {
        diags.error(e.cfg->cert_mark,
                    "cannot use certificate chain '" + e.cfg->cert + "': " + openssl_errors());
        return false;
    }
    if (SSL_CTX_use_PrivateKey(ctx, e.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        diags.error(e.cfg->key_mark,
                    "cannot use private key '" + e.cfg->key + "' with '" + e.cfg->cert + "'");
        ERR_clear_error();  // its text could describe the key
        return false;
    }
    return true;
}

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

server_tls make_server_tls(const config::listener_tls& cfg, const std::string& listener,
                           config::diagnostics& diags, std::time_t now) {
    server_tls out;
    ERR_clear_error();
    bool ok = true;
    if (cfg.profile == config::tls_profile::custom) ok = check_custom_ciphers(cfg, diags);

    std::vector<loaded_entry> entries;
    for (const auto& c : cfg.certificates) {
        if (auto e = load_entry(c, now, diags, out.certificates)) {
            entries.push_back(std::move(*e));
        } else {
            ok = false;
        }
    }

    // Names the operator expects to serve, none of which may fall through to a
    // certificate that does not carry them.
    if (ok) {
        for (const auto& name : cfg.server_names) {
            const bool covered = std::any_of(entries.begin(), entries.end(), [&](auto& e) {
                return covers(e.chain.front().get(), name.text);
            });
            if (!covered) {
                diags.warning(name.mark, "server name '" + name.text +
                                             "' is not covered by the subjectAltName of any "
                                             "certificate of this listener");
            }
        }
    }

    // Entries with the same names form one context (ECDSA and RSA side by side); SNI picks
    // among contexts. Within one, a key type can be served only once.
    auto state = std::make_shared<listener_state>();
    std::vector<std::vector<loaded_entry*>> groups;
    for (auto& e : entries) {
        auto it = std::find(state->identities.begin(), state->identities.end(), e.identities);
        if (it == state->identities.end()) {
            state->identities.push_back(e.identities);
            groups.emplace_back();
            it = state->identities.end() - 1;
        }
        auto& group = groups[static_cast<std::size_t>(it - state->identities.begin())];
        const int type = EVP_PKEY_get_base_id(X509_get0_pubkey(e.chain.front().get()));
        for (const loaded_entry* other : group) {
            if (EVP_PKEY_get_base_id(X509_get0_pubkey(other->chain.front().get())) == type) {
                diags.error(e.cfg->cert_mark, "certificate '" + e.cfg->cert +
                                                  "' has the same names and key type "
                                                  "as '" +
                                                  other->cfg->cert + "' (line " +
                                                  std::to_string(other->cfg->cert_mark.line) +
                                                  "): only one of them could ever be served");
                ok = false;
            }
        }
        group.push_back(&e);
    }

    switch (cfg.session_tickets.mode) {
        case config::session_ticket_mode::rotate:
            state->tickets = ticket_keys::rotating_for(listener, cfg.session_tickets.rotate);
            break;
        case config::session_ticket_mode::key_file: {
            std::string error;
            state->tickets = ticket_keys::from_file(cfg.session_tickets.key_file, error);
            if (!state->tickets) {
                diags.error(cfg.session_tickets.key_file_mark, error);
                ok = false;
            }
            break;
        }
        case config::session_ticket_mode::off:
            break;
    }
    if (!ok || groups.empty()) return out;

    bool any_staple = false;
    for (auto& group : groups) {
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
        SSL_CTX* native = ctx->native_handle();
        if (auto problem = profile_error(native, cfg); !problem.empty()) {
            diags.error(cfg.mark, problem);
            return out;
        }
        set_session_policy(native, cfg, listener, state->tickets.get());
        for (loaded_entry* e : group) {
            if (!install(native, *e, diags)) return out;
            if (e->staple) {
                state->staples.emplace_back(e->chain.front().get(), std::move(*e->staple));
                any_staple = true;
            }
        }
        state->contexts.push_back(std::move(ctx));
    }
    for (auto& ctx : state->contexts) {
        if (any_staple) {
            SSL_CTX_set_tlsext_status_cb(ctx->native_handle(), on_status_request);
            SSL_CTX_set_tlsext_status_arg(ctx->native_handle(), state.get());
        }
    }
    if (state->contexts.size() > 1) {
        SSL_CTX* first = state->contexts.front()->native_handle();
        SSL_CTX_set_tlsext_servername_callback(first, on_servername);
        SSL_CTX_set_tlsext_servername_arg(first, state.get());
    }
    ssl::context* first = state->contexts.front().get();
    out.context = std::shared_ptr<ssl::context>(std::move(state), first);
    return out;
}

}  // namespace mailgate::tls
