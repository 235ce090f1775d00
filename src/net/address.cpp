#include "net/address.hpp"

#include <charconv>

#include <boost/asio/io_context.hpp>

namespace mailgate::net {
namespace asio = boost::asio;

std::optional<host_port> split_host_port(std::string_view text) {
    host_port hp;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        hp.host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
        hp.host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (hp.host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
        value > 65535)
        return std::nullopt;
    hp.port = static_cast<std::uint16_t>(value);
    return hp;
}

std::vector<asio::ip::tcp::endpoint> resolve(const host_port& hp, std::string& error) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(hp.host, ec);
    if (!ec) return {asio::ip::tcp::endpoint(ip, hp.port)};
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    const auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
    if (ec) {
        error = "cannot resolve '" + hp.host + "': " + ec.message();
        return {};
    }
    std::vector<asio::ip::tcp::endpoint> out;
    for (const auto& r : results) out.push_back(r.endpoint());
    return out;
}

std::string ip_string(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
    return a.to_string();
}

}  // namespace mailgate::net
