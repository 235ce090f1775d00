#pragma once
// A plain-HTTP connection on a redirect listener: one request head read with the same
// strict scanner and validator as the TLS listeners, answered with a 301 to the https
// URL (or 400/414/431), then closed. Nothing is ever proxied from here.
#include <cstddef>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/worker.hpp"

namespace mailgate::proxy {

void start_redirect_session(worker& w, boost::asio::ip::tcp::socket socket,
                            std::size_t listener_index, connection_ticket ticket);

}  // namespace mailgate::proxy
