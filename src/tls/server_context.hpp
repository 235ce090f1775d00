#pragma once
// The listener's TLS: the hardened profile, the certificates (ECDSA and RSA side by side
// in one SSL_CTX; several name groups chosen by SNI), session tickets, OCSP staples.
// Nothing weaker than TLS 1.2 with ECDHE+AEAD can be configured except through
// `profile: custom` with `allow_weak: true`, which is warned about every time.
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::tls {

// Stateful session cache of the listener's first context (OpenSSL keeps one per SSL_CTX,
// shared by every worker under its own lock): TLS 1.2 clients without ticket support,
// and TLS 1.3 when tickets are off, resume from it. 20480 sessions, as nginx's builtin
// cache; a session is a few hundred bytes.
inline constexpr long session_cache_size = 20480;

struct server_tls {
    // What a session starts with; SNI may switch a connection to another context of the
    // same listener. Keeps every context, the ticket keys and the staples alive.
    std::shared_ptr<boost::asio::ssl::context> context;
    // One line per certificate, for the start-up log: subject, SANs, key type and size,
    // signature algorithm, not-after (and the OCSP staple's validity, if any).
    std::vector<std::string> certificates;
};

// `context` is nullptr after adding errors (at the marks of the offending values) when a
// certificate, key, OCSP response, ticket key or cipher list is refused. Warnings are
// added either way. `listener` names the listener (session ticket keys survive reloads
// per listener); `now` is the time certificates are judged at.
server_tls make_server_tls(const config::listener_tls& cfg, const std::string& listener,
                           config::diagnostics& diags, std::time_t now = std::time(nullptr));

// The last OpenSSL errors of this thread, joined, for diagnostics and logs.
std::string openssl_errors();

}  // namespace mailgate::tls
