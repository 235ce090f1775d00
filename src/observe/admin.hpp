#pragma once
// The admin endpoint: plain HTTP on a loopback address, serving GET /metrics (Prometheus
// text) and GET /status (JSON). Runs on the control thread, never on a worker.
#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace mailgate::observe {

struct admin_handlers {
    std::function<std::string()> metrics;  // Prometheus exposition text
    std::function<std::string()> status;   // JSON
};

// Binds now (throws on failure), serves until `io` stops.
void start_admin(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& ep,
                 admin_handlers handlers);

// Escapes a Prometheus label value.
std::string prometheus_label(std::string_view value);

}  // namespace mailgate::observe
