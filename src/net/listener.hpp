#pragma once
// Listening sockets: one per worker and address, bound with SO_REUSEPORT so that the
// kernel spreads new connections over the workers without a shared accept lock.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace mailgate::net {

// Binds and listens; throws boost::system::system_error at startup on failure.
boost::asio::ip::tcp::acceptor open_listener(boost::asio::io_context& io,
                                             const boost::asio::ip::tcp::endpoint& ep);

}  // namespace mailgate::net
