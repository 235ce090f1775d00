#pragma once
// R19, Extended Protection. Exchange with Extended Protection binds an NTLM or Kerberos
// login to the TLS channel: the client computes the channel binding from the certificate it
// sees (mailgate's), and Exchange compares it with the one computed from its own
// certificate. Through a TLS-terminating proxy the logins therefore work only when both
// present the very same certificate (the same SHA-256 of the DER). `check` and `run` (at
// start, never on reload: it connects to every upstream) compare the two and warn, or refuse
// with `extended_protection: require_same_certificate`.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"
#include "tls/openssl_ptr.hpp"

namespace mailgate::runtime {
struct snapshot;
}

namespace mailgate::tls {

// "AB:CD:...": the SHA-256 of the DER, as `openssl x509 -noout -fingerprint -sha256` prints it.
std::string sha256_fingerprint(X509* cert);

// The leaf certificate of one of mailgate's listener certificate entries.
struct own_certificate {
    std::string listener;
    x509_ptr leaf;
};

struct ep_comparison {
    bool same = false;
    // Set when not `same`: how the certificates differ, e.g. "presents certificate SHA-256
    // ... (CN=...), but mailgate presents SHA-256 ... (CN=..., listener 'public') for 'name'".
    std::string difference;
};

// Same when every certificate of mailgate's that covers one of `names` (the names clients
// use: server_name, external_host) is `upstream_leaf`, or, when none covers them, when one
// of mailgate's certificates is `upstream_leaf` anyway. Several covering certificates (ECDSA
// and RSA) differ from the upstream's single one: clients may be given either.
ep_comparison compare_certificates(X509* upstream_leaf, const std::vector<own_certificate>& own,
                                   const std::vector<std::string>& names);

// Connects to the first server of every upstream whose extended_protection is not off (all
// at once, `timeout` for connecting and handshaking in total), and adds to `diags`, at the
// upstream's position: a warning (an error with require_same_certificate) when its
// certificate is not mailgate's for that name; a warning when it could not be compared
// (unreachable: never an error, so that mailgate can start while Exchange is down).
// Returns a line for each upstream whose certificate is mailgate's own, for the start log.
// `snap` must be built from `cfg` (its upstreams in the same order).
std::vector<std::string> check_extended_protection(
    const config::root& cfg, const runtime::snapshot& snap, config::diagnostics& diags,
    std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace mailgate::tls
