#pragma once
// Certificates, keys, OCSP responses and in-memory handshakes for the tls tests, made
// with OpenSSL's APIs at test time (no fixtures on disk, no openssl CLI).
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace mailgate::tls::testing {

enum class key_kind { ec256, ec224, ec384, rsa2048, rsa1024, ed25519 };

// Key generation is slow for RSA; each kind is made once and shared (the tests never
// need two different keys of one kind except for the mismatch test, which uses `fresh`).
// The cache owns one reference to each key and gives it back at exit. OpenSSL is
// initialized before the cache is made, so that the cache is destroyed (its destructor
// registered later) before OpenSSL's own atexit cleanup runs.
inline pkey_ptr make_key(key_kind kind, bool fresh = false) {
    static std::map<key_kind, pkey_ptr> cache = [] {
        OPENSSL_init_crypto(0, nullptr);
        return std::map<key_kind, pkey_ptr>();
    }();
    if (!fresh) {
        if (auto it = cache.find(kind); it != cache.end()) return up_ref(it->second.get());
    }
    EVP_PKEY* k = nullptr;
    switch (kind) {
        case key_kind::ec256:
            k = EVP_EC_gen("P-256");
            break;
        case key_kind::ec224:
            k = EVP_EC_gen("P-224");
            break;
        case key_kind::ec384:
            k = EVP_EC_gen("P-384");
            break;
        case key_kind::rsa2048:
            k = EVP_RSA_gen(2048);
            break;
        case key_kind::rsa1024:
            k = EVP_RSA_gen(1024);
            break;
        case key_kind::ed25519:
            k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
            break;
    }
    pkey_ptr key(k);
    if (!key) throw std::runtime_error("key generation failed");
    if (!fresh) cache[kind] = up_ref(key.get());
    return key;
}

struct cert_spec {
    std::string cn = "mail.example.com";
    std::string sans = "DNS:mail.example.com";  // openssl syntax; empty: no extension
    key_kind key = key_kind::ec256;
    const EVP_MD* md = EVP_sha256();  // nullptr for Ed25519
    long not_before = -3600;          // seconds from now
    long not_after = 90L * 86400;
    bool ca = false;

    cert_spec& named(std::string common_name, std::string alt_names) {
        cn = std::move(common_name);
        sans = std::move(alt_names);
        return *this;
    }
    cert_spec& with_key(key_kind k) {
        key = k;
        return *this;
    }
    cert_spec& signed_with(const EVP_MD* digest) {
        md = digest;
        return *this;
    }
    cert_spec& valid(long from, long until) {
        not_before = from;
        not_after = until;
        return *this;
    }
    cert_spec& as_ca() {
        ca = true;
        return *this;
    }
};

struct issued {
    x509_ptr cert;
    pkey_ptr key;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) throw std::runtime_error("bad extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate per `spec`, signed by `issuer` (self-signed when nullptr).
inline issued make_cert(const cert_spec& spec, const issued* issuer = nullptr,
                        pkey_ptr key = nullptr) {
    static long serial = 1000;
    issued out;
    out.key = key ? std::move(key) : make_key(spec.key);
    out.cert.reset(X509_new());
    X509* x = out.cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(x), spec.not_before);
    X509_gmtime_adj(X509_getm_notAfter(x), spec.not_after);
    X509_set_pubkey(x, out.key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
    X509* signer_cert = issuer ? issuer->cert.get() : x;
    EVP_PKEY* signer_key = issuer ? issuer->key.get() : out.key.get();
    X509_set_issuer_name(x, X509_get_subject_name(signer_cert));
    add_ext(x, signer_cert, NID_basic_constraints,
            spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer_cert, NID_key_usage,
            spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
    add_ext(x, signer_cert, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, signer_cert, NID_authority_key_identifier, "keyid:always");
    if (!spec.sans.empty()) add_ext(x, signer_cert, NID_subject_alt_name, spec.sans);
    if (X509_sign(x, signer_key, spec.md) == 0) throw std::runtime_error("signing failed");
    return out;
}

inline issued make_ca(const std::string& cn = "Test Root CA", const issued* parent = nullptr,
                      const EVP_MD* md = EVP_sha256()) {
    cert_spec s;
    s.cn = cn;
    s.sans = "";
    s.ca = true;
    s.md = md;
    s.not_after = 3650L * 86400;
    return make_cert(s, parent);
}

inline std::string pem(X509* x) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), x);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

inline std::string pem(EVP_PKEY* k, const char* passphrase = nullptr) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (passphrase) {
        PEM_write_bio_PrivateKey(
            bio.get(), k, EVP_aes_256_cbc(), reinterpret_cast<const unsigned char*>(passphrase),
            static_cast<int>(std::string(passphrase).size()), nullptr, nullptr);
    } else {
        PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
    }
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

inline std::vector<x509_ptr> chain_of(std::initializer_list<X509*> certs) {
    std::vector<x509_ptr> out;
    for (X509* c : certs) out.push_back(up_ref(c));
    return out;
}

struct ocsp_spec {
    int status = V_OCSP_CERTSTATUS_GOOD;
    long this_update = -60;  // seconds from now
    long next_update = 86400;
    int response_status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    const EVP_MD* id_md = EVP_sha1();

    ocsp_spec& with_status(int s) {
        status = s;
        return *this;
    }
    ocsp_spec& times(long this_upd, long next_upd) {
        this_update = this_upd;
        next_update = next_upd;
        return *this;
    }
    ocsp_spec& answered(int s) {
        response_status = s;
        return *this;
    }
    ocsp_spec& id_digest(const EVP_MD* md) {
        id_md = md;
        return *this;
    }
};

// A DER OCSP response about `leaf` (issued by `issuer`), signed by `signer`.
inline std::vector<unsigned char> make_ocsp(const ocsp_spec& spec, X509* leaf, X509* issuer,
                                            const issued& signer) {
    OCSP_RESPONSE* resp = nullptr;
    if (spec.response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        resp = OCSP_response_create(spec.response_status, nullptr);
    } else {
        ocsp_basic_ptr bs(OCSP_BASICRESP_new());
        ocsp_certid_ptr id(OCSP_cert_to_id(spec.id_md, leaf, issuer));
        asn1_time_ptr thisupd(X509_gmtime_adj(nullptr, spec.this_update));
        asn1_time_ptr nextupd(X509_gmtime_adj(nullptr, spec.next_update));
        asn1_time_ptr revtime(X509_gmtime_adj(nullptr, -86400));
        const bool revoked = spec.status == V_OCSP_CERTSTATUS_REVOKED;
        OCSP_basic_add1_status(bs.get(), id.get(), spec.status,
                               revoked ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0,
                               revoked ? revtime.get() : nullptr, thisupd.get(), nextupd.get());
        OCSP_basic_sign(bs.get(), signer.cert.get(), signer.key.get(), EVP_sha256(), nullptr, 0);
        resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs.get());
    }
    unsigned char* der = nullptr;
    const int len = i2d_OCSP_RESPONSE(resp, &der);
    OCSP_RESPONSE_free(resp);
    std::vector<unsigned char> out(der, der + len);
    OPENSSL_free(der);
    return out;
}

// A fresh directory under /tmp, removed with its contents at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string templ =
            (std::filesystem::temp_directory_path() / "mailgate-tls-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::string write(const std::string& name, const std::string& content,
                      mode_t mode = 0600) const {
        const auto p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        ::chmod(p.c_str(), mode);
        return p.string();
    }
    std::string write(const std::string& name, const std::vector<unsigned char>& bytes,
                      mode_t mode = 0600) const {
        return write(name, std::string(bytes.begin(), bytes.end()), mode);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A TLS handshake between two SSL objects over a memory BIO pair.
struct handshake_result {
    bool ok = false;
    bool reused = false;
    std::string version;
    std::string cipher;
    x509_ptr peer;                      // the server's leaf, as the client got it
    std::vector<unsigned char> staple;  // the OCSP response the client got
    std::unique_ptr<SSL_SESSION, openssl_deleter<SSL_SESSION_free>> session;
};

struct client_options {
    const char* sni = nullptr;
    const char* sigalgs = nullptr;
    const char* ciphers = nullptr;  // TLS 1.2
    const char* suites = nullptr;   // TLS 1.3
    int max_version = 0;
    bool fallback_scsv = false;
    bool request_ocsp = false;
    SSL_SESSION* resume = nullptr;
    SSL_CTX* client_ctx = nullptr;  // instead of a fresh, non-verifying one

    client_options& server_name(const char* name) {
        sni = name;
        return *this;
    }
    client_options& with_sigalgs(const char* list) {
        sigalgs = list;
        return *this;
    }
    client_options& with_ciphers(const char* list) {
        ciphers = list;
        return *this;
    }
    client_options& with_suites(const char* list) {
        suites = list;
        return *this;
    }
    client_options& up_to(int version) {
        max_version = version;
        return *this;
    }
    client_options& scsv() {
        fallback_scsv = true;
        return *this;
    }
    client_options& ocsp() {
        request_ocsp = true;
        return *this;
    }
    client_options& resuming(SSL_SESSION* session) {
        resume = session;
        return *this;
    }
    client_options& using_context(SSL_CTX* ctx) {
        client_ctx = ctx;
        return *this;
    }
};

inline handshake_result handshake(SSL_CTX* server_ctx, const client_options& o = client_options()) {
    handshake_result r;
    ssl_ctx_ptr client_ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_NONE, nullptr);
    if (o.max_version) SSL_CTX_set_max_proto_version(client_ctx.get(), o.max_version);
    if (o.fallback_scsv) SSL_CTX_set_mode(client_ctx.get(), SSL_MODE_SEND_FALLBACK_SCSV);
    if (o.ciphers) SSL_CTX_set_cipher_list(client_ctx.get(), o.ciphers);
    if (o.suites) SSL_CTX_set_ciphersuites(client_ctx.get(), o.suites);
    if (o.sigalgs) SSL_CTX_set1_sigalgs_list(client_ctx.get(), o.sigalgs);
    ssl_ptr client(SSL_new(o.client_ctx ? o.client_ctx : client_ctx.get()));
    ssl_ptr server(SSL_new(server_ctx));
    BIO *a = nullptr, *b = nullptr;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(server.get(), a, a);
    SSL_set_bio(client.get(), b, b);
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    if (o.sni) SSL_set_tlsext_host_name(client.get(), o.sni);
    if (o.request_ocsp) SSL_set_tlsext_status_type(client.get(), TLSEXT_STATUSTYPE_ocsp);
    if (o.resume) SSL_set_session(client.get(), o.resume);
    bool client_done = false, server_done = false;
    for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
        if (!client_done) {
            const int rc = SSL_do_handshake(client.get());
            if (rc == 1) {
                client_done = true;
            } else {
                const int e = SSL_get_error(client.get(), rc);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) break;
            }
        }
        if (!server_done) {
            const int rc = SSL_do_handshake(server.get());
            if (rc == 1) {
                server_done = true;
            } else {
                const int e = SSL_get_error(server.get(), rc);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) break;
            }
        }
    }
    ERR_clear_error();
    if (!(client_done && server_done)) return r;
    // TLS 1.3 tickets arrive after the handshake: let the client read them.
    char buf[1];
    SSL_write(server.get(), "x", 1);
    SSL_read(client.get(), buf, 1);
    ERR_clear_error();
    r.ok = true;
    r.reused = SSL_session_reused(client.get()) == 1;
    r.version = SSL_get_version(client.get());
    r.cipher = SSL_get_cipher_name(client.get());
    r.peer.reset(SSL_get1_peer_certificate(client.get()));
    const unsigned char* staple = nullptr;
    const long len = SSL_get_tlsext_status_ocsp_resp(client.get(), &staple);
    if (len > 0 && staple) r.staple.assign(staple, staple + len);
    r.session.reset(SSL_get1_session(client.get()));
    // Without close_notify OpenSSL marks the session as not resumable. (So does freeing a
    // client context that caches sessions: the client context here caches none.)
    SSL_shutdown(client.get());
    SSL_shutdown(server.get());
    ERR_clear_error();
    return r;
}

}  // namespace mailgate::tls::testing
