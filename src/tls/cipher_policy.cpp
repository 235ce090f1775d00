#include "tls/cipher_policy.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include "tls/openssl_ptr.hpp"

namespace mailgate::tls {

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += sep;
        out += p;
    }
    return out;
}

bool is_tls13(const SSL_CIPHER* c) {
    return std::string_view(SSL_CIPHER_get_version(c)) == "TLSv1.3";
}

// The weak families a word of a cipher list asks for by name.
std::vector<std::string> weak_words(std::string_view word) {
    static const std::array<std::pair<std::string_view, std::string_view>, 9> families{{
        {"RC4", "RC4"},
        {"3DES", "3DES"},
        {"DES", "DES"},
        {"NULL", "NULL"},
        {"EXP", "EXPORT"},
        {"MD5", "MD5"},
        {"ADH", "anonymous"},
        {"AECDH", "anonymous"},
        {"KRSA", "static RSA key exchange"},
    }};
    const std::string w = upper(word);
    std::vector<std::string> out;
    for (const auto& [needle, reason] : families) {
        if (w.find(needle) == std::string::npos) continue;
        if (needle == "DES" &&
            (w.find("3DES") != std::string::npos || w.find("CBC3") != std::string::npos ||
             w.find("EDE3") != std::string::npos)) {
            if (std::find(out.begin(), out.end(), "3DES") == out.end()) out.emplace_back("3DES");
            continue;
        }
        if (std::find(out.begin(), out.end(), reason) == out.end()) out.emplace_back(reason);
    }
    return out;
}

}  // namespace

std::vector<std::string> weaknesses(const SSL_CIPHER* c) {
    std::vector<std::string> out;
    auto add = [&](std::string reason) {
        if (std::find(out.begin(), out.end(), reason) == out.end())
            out.push_back(std::move(reason));
    };
    switch (SSL_CIPHER_get_cipher_nid(c)) {
        case NID_undef:
            add("NULL encryption");
            break;
        case NID_rc4:
        case NID_rc4_40:
            add("RC4");
            break;
        case NID_des_ede3_cbc:
            add("3DES");
            break;
        case NID_des_cbc:
            add("DES");
            break;
        default:
            break;
    }
    // Under 128 bits and not one of the families above: an EXPORT-era cipher.
    if (out.empty() && SSL_CIPHER_get_bits(c, nullptr) < 128 &&
        SSL_CIPHER_get_cipher_nid(c) != NID_undef) {
        add("EXPORT-grade");
    }
    if (SSL_CIPHER_get_auth_nid(c) == NID_auth_null) add("anonymous");
    if (SSL_CIPHER_get_digest_nid(c) == NID_md5) add("MD5");
    switch (SSL_CIPHER_get_kx_nid(c)) {
        case NID_kx_ecdhe:
        case NID_kx_dhe:
        case NID_kx_ecdhe_psk:
        case NID_kx_dhe_psk:
        case NID_kx_any:  // TLS 1.3: always (EC)DHE
            break;
        case NID_kx_rsa:
            add("static RSA key exchange");
            break;
        default:
            add("no forward secrecy");
            break;
    }
    if (SSL_CIPHER_get_cipher_nid(c) != NID_undef && !SSL_CIPHER_is_aead(c)) add("CBC");
    return out;
}

cipher_list_report check_tls12_ciphers(const std::string& list) {
    cipher_list_report report;
    ERR_clear_error();
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        report.error = "cannot create an OpenSSL context";
        ERR_clear_error();
        return report;
    }
    // Judge the list as written, not as today's security level filters it.
    SSL_CTX_set_security_level(ctx.get(), 0);
    const bool matched = SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) == 1;
    ERR_clear_error();
    std::vector<std::string> enabled;
    const STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
    for (int i = 0; matched && i < sk_SSL_CIPHER_num(ciphers); ++i) {
        const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
        if (is_tls13(c)) continue;
        const std::string name = SSL_CIPHER_get_name(c);
        enabled.push_back(upper(name));
        if (auto why = weaknesses(c); !why.empty()) {
            report.weak.push_back(name + " (" + join(why, ", ") + ")");
        }
    }
    // Words that ask for a weak family: those OpenSSL still has are reported above by
    // name, the others (RC4, EXPORT: gone from OpenSSL 3) here.
    std::string word;
    auto flush = [&] {
        if (!word.empty() && word.front() != '!' && word.front() != '-' && word.front() != '@' &&
            std::find(enabled.begin(), enabled.end(), upper(word)) == enabled.end()) {
            if (auto why = weak_words(word); !why.empty()) {
                report.weak.push_back(word + " (" + join(why, ", ") + ")");
            }
        }
        word.clear();
    };
    for (char c : list) {
        if (c == ':' || c == ',' || c == ' ') {
            flush();
        } else {
            word += c;
        }
    }
    flush();
    if (enabled.empty() && report.weak.empty()) {
        report.error = "no TLS 1.2 cipher suite matches it";
    }
    return report;
}

std::string check_tls13_suites(const std::string& list) {
    ERR_clear_error();
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return "cannot create an OpenSSL context";
    if (SSL_CTX_set_ciphersuites(ctx.get(), list.c_str()) != 1) {
        ERR_clear_error();
        return "it names a TLS 1.3 suite OpenSSL does not know (known: " +
               std::string(tls13_suites) + ":TLS_AES_128_CCM_SHA256)";
    }
    const STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
        if (is_tls13(sk_SSL_CIPHER_value(ciphers, i))) return {};
    }
    return "no TLS 1.3 suite matches it";
}

}  // namespace mailgate::tls
