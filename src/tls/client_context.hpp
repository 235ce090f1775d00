#pragma once
// The upstream ("SSL bridging") TLS context: TLS 1.2 at least, peer verification on unless
// `insecure_skip_verify: true`, an optional client certificate (mTLS).
#include <memory>
#include <string>

#include <openssl/ssl.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::tls {

std::shared_ptr<boost::asio::ssl::context> make_client_context(const config::upstream_tls& cfg,
                                                               config::diagnostics& diags);

// Sets SNI and the name the certificate must carry (DNS name or IP address) on a new
// upstream stream. Returns false when OpenSSL refuses the name.
bool prepare_client_stream(SSL* stream, const std::string& server_name);

// Why a failed upstream handshake failed, e.g. "certificate verify failed: Hostname mismatch".
std::string describe_handshake_failure(SSL* stream, const boost::system::error_code& ec);

}  // namespace mailgate::tls
