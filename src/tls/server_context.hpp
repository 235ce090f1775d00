#pragma once
// The listener's TLS context: the hardened profile and the certificates. Nothing weaker
// than TLS 1.2 with ECDHE+AEAD can be configured (the profiles are the only knob).
#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::tls {

// Returns nullptr after adding diagnostics (at the certificate's mark) when a certificate
// or key cannot be loaded or does not match.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const config::listener_tls& cfg,
                                                               config::diagnostics& diags);

// The last OpenSSL errors of this thread, joined, for diagnostics and logs.
std::string openssl_errors();

}  // namespace mailgate::tls
