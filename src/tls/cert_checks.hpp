#pragma once
// What `mailgate check` says about a certificate entry (chain + key), and how `run`
// describes a certificate at start. Pure functions of the certificates and a time, so
// that tests can make certificates of every kind and check them at any moment.
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace mailgate::tls {

// Reads a PEM file: the leaf first, then its chain. Empty with `error` set when the file
// holds no certificate or a damaged one.
std::vector<x509_ptr> read_certificate_chain(const std::string& path, std::string& error);

struct finding {
    enum class level { error, warning };
    enum class subject { certificate, key };  // which configuration value it is about
    level lvl = level::error;
    subject about = subject::certificate;
    std::string message;
};

// Errors: a leaf or intermediate signed with SHA-1 or MD5 (or older), RSA under 2048 bits,
// EC under 256, a key type no profile can use, no subjectAltName on the leaf, a certificate
// expired or not yet valid, a key that does not match the leaf (when `key` is given).
// Warnings: the leaf expires within 30 days; the leaf's issuer is not in the file (and the
// leaf is not self-signed). A client certificate (`server` false) needs no subjectAltName
// and no chain in its file.
std::vector<finding> check_certificate_entry(const std::vector<x509_ptr>& chain, EVP_PKEY* key,
                                             std::time_t now, bool server = true);

// The certificate in `chain` that issued `cert`, or nullptr.
X509* find_issuer(const std::vector<x509_ptr>& chain, X509* cert);

// "DNS:mail.example.com", "IP:127.0.0.1", in certificate order.
std::vector<std::string> subject_alt_names(X509* cert);

// The lower-case DNS names and IP addresses of the subjectAltName: the identity SNI picks by.
std::vector<std::string> san_identities(X509* cert);

// Whether a client asking for `name` (a host name or an IP address) accepts `cert`.
bool covers(X509* cert, const std::string& name);

// Whether `host` (lower case) matches a SAN DNS name `pattern` (lower case): equal, or a
// "*." wildcard standing for exactly one left-most label.
bool host_matches(std::string_view pattern, std::string_view host);

// "CN=mail.example.com,O=Example" (RFC 2253).
std::string subject_of(X509* cert);

// "EC P-256 (256 bits)", "RSA 2048 bits".
std::string describe_key(EVP_PKEY* key);

// "2026-11-27T18:52:00Z"
std::string format_time(const ASN1_TIME* t);

// The start-up line: subject, SANs, key type and size, signature algorithm, not-after.
std::string describe_certificate(X509* leaf);

}  // namespace mailgate::tls
