#include "net/listener.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/socket_base.hpp>

namespace mailgate::net {
namespace asio = boost::asio;

asio::ip::tcp::acceptor open_listener(asio::io_context& io, const asio::ip::tcp::endpoint& ep) {
    asio::ip::tcp::acceptor acceptor(io);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    const int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
    if (ep.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

}  // namespace mailgate::net
