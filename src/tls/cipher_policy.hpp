#pragma once
// The TLS profiles' fixed values, and the judgement of a `profile: custom` cipher list:
// which suites it enables that `check` refuses (unless allow_weak).
#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace mailgate::tls {

// Mozilla intermediate 6.0 TLS 1.2 suites: ECDHE + AEAD only, in server preference order.
inline constexpr const char* intermediate_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* key_exchange_groups = "X25519:P-256:P-384";

// Why a TLS 1.2 suite is weak: "RC4", "3DES", "DES", "NULL encryption", "EXPORT-grade",
// "anonymous", "MD5", "static RSA key exchange", "no forward secrecy", "CBC". Empty: fine.
std::vector<std::string> weaknesses(const SSL_CIPHER* cipher);

struct cipher_list_report {
    std::string error;              // OpenSSL found no suite in the list
    std::vector<std::string> weak;  // "DES-CBC3-SHA (3DES, static RSA key exchange, CBC)"
};

// What a TLS 1.2 cipher list enables, as OpenSSL reads it, and what of it is weak. Words
// of the list that ask for a weak family OpenSSL no longer has (RC4-SHA, EXPORT, ...) are
// reported too: the operator asked for them.
cipher_list_report check_tls12_ciphers(const std::string& list);

// Why a TLS 1.3 suite list is unusable, or empty.
std::string check_tls13_suites(const std::string& list);

}  // namespace mailgate::tls
