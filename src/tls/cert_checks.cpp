#include "tls/cert_checks.hpp"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>

namespace mailgate::tls {

namespace {

constexpr int min_rsa_bits = 2048;
constexpr int min_ec_bits = 256;
constexpr long expiry_warning_days = 30;

std::string printable(const unsigned char* data, int len) {
    std::string out;
    for (int i = 0; i < len; ++i) {
        const unsigned char c = data[i];
        if (c < 0x20 || c >= 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// "CN=mail.example.com,O=Example" (RFC 2253, control characters escaped).
std::string name_text(const X509_NAME* name) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio) return "?";
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    std::string out(data, static_cast<std::size_t>(len > 0 ? len : 0));
    return out.empty() ? "(empty name)" : out;
}

std::string lower(std::string s) {
    for (auto& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
    char buf[INET6_ADDRSTRLEN] = {};
    const int len = ASN1_STRING_length(ip);
    const unsigned char* data = ASN1_STRING_get0_data(ip);
    if (len == 4) {
        ::inet_ntop(AF_INET, data, buf, sizeof buf);
    } else if (len == 16) {
        ::inet_ntop(AF_INET6, data, buf, sizeof buf);
    } else {
        return "?";
    }
    return buf;
}

// The canonical text of an IP address, or empty when `s` is not one.
std::string canonical_ip(const std::string& s) {
    unsigned char addr[16];
    char buf[INET6_ADDRSTRLEN] = {};
    if (::inet_pton(AF_INET, s.c_str(), addr) == 1) {
        ::inet_ntop(AF_INET, addr, buf, sizeof buf);
        return buf;
    }
    if (::inet_pton(AF_INET6, s.c_str(), addr) == 1) {
        ::inet_ntop(AF_INET6, addr, buf, sizeof buf);
        return buf;
    }
    return {};
}

struct general_names_deleter {
    void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, general_names_deleter>;

general_names_ptr alt_names(X509* cert) {
    return general_names_ptr(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
}

// "SHA-1" for a signature made with a digest nobody may rely on any more, else empty.
std::string weak_digest(X509* cert) {
    int md = NID_undef, pk = NID_undef, secbits = 0;
    uint32_t flags = 0;
    if (X509_get_signature_info(cert, &md, &pk, &secbits, &flags) != 1) {
        ERR_clear_error();
        if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pk) != 1) return {};
    }
    switch (md) {
        case NID_sha1:
            return "SHA-1";
        case NID_md5:
        case NID_md5_sha1:
            return "MD5";
        case NID_md4:
            return "MD4";
        case NID_md2:
            return "MD2";
        case NID_mdc2:
            return "MDC2";
        default:
            return {};
    }
}

std::string signature_name(X509* cert) {
    const int nid = X509_get_signature_nid(cert);
    const char* ln = OBJ_nid2ln(nid);
    return ln ? ln : "unknown";
}

// "P-256" (or the OpenSSL name of a curve without a NIST name), empty if not EC.
std::string curve_name(EVP_PKEY* key) {
    char name[80] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) !=
        1) {
        ERR_clear_error();
        return {};
    }
    const int nid = OBJ_txt2nid(name);
    const char* nist = nid != NID_undef ? EC_curve_nid2nist(nid) : nullptr;
    return nist ? nist : name;
}

// A problem with the key of `cert`, or empty.
std::string key_problem(EVP_PKEY* key) {
    if (key == nullptr) return "has no usable public key";
    const int bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
            if (bits < min_rsa_bits) {
                return "has an RSA key of " + std::to_string(bits) + " bits (at least " +
                       std::to_string(min_rsa_bits) + " are required)";
            }
            return {};
        case EVP_PKEY_EC:
            if (bits < min_ec_bits) {
                return "has an EC key of " + std::to_string(bits) + " bits (" + curve_name(key) +
                       "; at least " + std::to_string(min_ec_bits) + " are required)";
            }
            return {};
        case EVP_PKEY_ED25519:
        case EVP_PKEY_ED448:
            return {};
        default:
            return std::string("has a ") + OBJ_nid2sn(EVP_PKEY_get_base_id(key)) +
                   " key, which TLS 1.2 and 1.3 with ECDHE cannot use (use ECDSA or RSA)";
    }
}

}  // namespace

std::vector<x509_ptr> read_certificate_chain(const std::string& path, std::string& error) {
    std::vector<x509_ptr> chain;
    ERR_clear_error();
    bio_ptr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        error = "cannot open it";
        ERR_clear_error();
        return chain;
    }
    x509_ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        error = "no PEM certificate in it";
        ERR_clear_error();
        return chain;
    }
    chain.push_back(std::move(leaf));
    while (x509_ptr next{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
        chain.push_back(std::move(next));
    }
    const unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        error = "certificate " + std::to_string(chain.size() + 1) + " in it is damaged";
        chain.clear();
    }
    ERR_clear_error();
    return chain;
}

X509* find_issuer(const std::vector<x509_ptr>& chain, X509* cert) {
    for (const auto& c : chain) {
        if (c.get() != cert && X509_check_issued(c.get(), cert) == X509_V_OK) return c.get();
    }
    return nullptr;
}

std::vector<finding> check_certificate_entry(const std::vector<x509_ptr>& chain, EVP_PKEY* key,
                                             std::time_t now, bool server) {
    std::vector<finding> out;
    if (chain.empty()) return out;
    using lvl = finding::level;
    auto add = [&](lvl l, std::string message,
                   finding::subject about = finding::subject::certificate) {
        out.push_back({l, about, std::move(message)});
    };
    X509* leaf = chain.front().get();
    asn1_time_ptr now_asn1(ASN1_TIME_set(nullptr, now));

    for (const auto& c : chain) {
        X509* cert = c.get();
        const bool is_leaf = cert == leaf;
        // A root shipped in the file is never used for verification: clients have their
        // own. Its signature and key are not the server's to choose.
        const bool is_root = !is_leaf && X509_self_signed(cert, 0) == 1;
        const std::string name = (is_leaf   ? "certificate '"
                                  : is_root ? "root certificate '"
                                            : "intermediate '") +
                                 subject_of(cert) + "'";
        if (!is_root) {
            if (auto weak = weak_digest(cert); !weak.empty()) {
                add(lvl::error, name + " is signed with " + weak + " (" + signature_name(cert) +
                                    "): reissue it signed with SHA-256 or better");
            }
            if (auto problem = key_problem(X509_get0_pubkey(cert)); !problem.empty()) {
                add(lvl::error, name + " " + problem);
            }
        }
        const ASN1_TIME* not_after = X509_get0_notAfter(cert);
        const ASN1_TIME* not_before = X509_get0_notBefore(cert);
        if (X509_cmp_time(not_after, &now) < 0) {
            if (is_root) {
                add(lvl::warning, name + " in the file expired on " + format_time(not_after) +
                                      ": some clients refuse the chain; remove it from the file");
            } else {
                add(lvl::error, name + " expired on " + format_time(not_after));
            }
        } else if (X509_cmp_time(not_before, &now) > 0) {
            add(lvl::error, name + " is not valid before " + format_time(not_before));
        } else if (is_leaf) {
            int days = 0, seconds = 0;
            if (ASN1_TIME_diff(&days, &seconds, now_asn1.get(), not_after) == 1 &&
                days < expiry_warning_days) {
                add(lvl::warning, name + " expires in " + std::to_string(days) + " day" +
                                      (days == 1 ? "" : "s") + " (" + format_time(not_after) + ")");
            }
        }
    }

    const auto sans = alt_names(leaf);
    bool has_identity = false;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans.get(), i);
        if (n->type == GEN_DNS || n->type == GEN_IPADD) has_identity = true;
    }
    if (!has_identity && server) {
        add(lvl::error, "certificate '" + subject_of(leaf) +
                            "' has no subjectAltName with a DNS name or IP address: clients "
                            "ignore the common name, so it matches no host");
    }

    if (server && X509_self_signed(leaf, 0) != 1 && find_issuer(chain, leaf) == nullptr) {
        add(lvl::warning, "chain incomplete: the issuer of certificate '" + subject_of(leaf) +
                              "' ('" + name_text(X509_get_issuer_name(leaf)) +
                              "') is not in the file; if it is an intermediate, append it after "
                              "the leaf: clients that lack it cannot verify the certificate");
    }
    ERR_clear_error();

    if (key != nullptr && X509_check_private_key(leaf, key) != 1) {
        add(lvl::error, "the private key does not match certificate '" + subject_of(leaf) + "'",
            finding::subject::key);
    }
    ERR_clear_error();
    return out;
}

std::vector<std::string> subject_alt_names(X509* cert) {
    std::vector<std::string> out;
    const auto sans = alt_names(cert);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans.get(), i);
        switch (n->type) {
            case GEN_DNS:
                out.push_back("DNS:" + printable(ASN1_STRING_get0_data(n->d.dNSName),
                                                 ASN1_STRING_length(n->d.dNSName)));
                break;
            case GEN_IPADD:
                out.push_back("IP:" + ip_text(n->d.iPAddress));
                break;
            case GEN_EMAIL:
                out.push_back("email:" + printable(ASN1_STRING_get0_data(n->d.rfc822Name),
                                                   ASN1_STRING_length(n->d.rfc822Name)));
                break;
            case GEN_URI:
                out.push_back("URI:" +
                              printable(ASN1_STRING_get0_data(n->d.uniformResourceIdentifier),
                                        ASN1_STRING_length(n->d.uniformResourceIdentifier)));
                break;
            default:
                break;
        }
    }
    return out;
}

std::vector<std::string> san_identities(X509* cert) {
    std::vector<std::string> out;
    const auto sans = alt_names(cert);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans.get(), i);
        if (n->type == GEN_DNS) {
            out.push_back(lower(
                printable(ASN1_STRING_get0_data(n->d.dNSName), ASN1_STRING_length(n->d.dNSName))));
        } else if (n->type == GEN_IPADD) {
            out.push_back(ip_text(n->d.iPAddress));
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern == host) return true;
    if (!pattern.starts_with("*.")) return false;
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    if (host.size() <= suffix.size() || !host.ends_with(suffix)) return false;
    const std::string_view label = host.substr(0, host.size() - suffix.size());
    return label.find('.') == std::string_view::npos;
}

bool covers(X509* cert, const std::string& name) {
    const std::string ip = canonical_ip(name);
    const std::string host = lower(name);
    for (const auto& id : san_identities(cert)) {
        if (!ip.empty() ? id == ip : host_matches(id, host)) return true;
    }
    return false;
}

std::string subject_of(X509* cert) { return name_text(X509_get_subject_name(cert)); }

std::string describe_key(EVP_PKEY* key) {
    if (key == nullptr) return "none";
    const int bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
            return "RSA " + std::to_string(bits) + " bits";
        case EVP_PKEY_RSA_PSS:
            return "RSA-PSS " + std::to_string(bits) + " bits";
        case EVP_PKEY_EC:
            return "EC " + curve_name(key) + " (" + std::to_string(bits) + " bits)";
        case EVP_PKEY_ED25519:
            return "Ed25519";
        case EVP_PKEY_ED448:
            return "Ed448";
        default:
            return std::string(OBJ_nid2sn(EVP_PKEY_get_base_id(key))) + " " + std::to_string(bits) +
                   " bits";
    }
}

std::string format_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string describe_certificate(X509* leaf) {
    std::string sans;
    for (const auto& s : subject_alt_names(leaf)) {
        if (!sans.empty()) sans += ",";
        sans += s;
    }
    return "subject " + subject_of(leaf) + "; SANs " + (sans.empty() ? "none" : sans) + "; key " +
           describe_key(X509_get0_pubkey(leaf)) + "; signature " + signature_name(leaf) +
           "; not after " + format_time(X509_get0_notAfter(leaf));
}

}  // namespace mailgate::tls
