#include "observe/admin.hpp"

#include <memory>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace mailgate::observe {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(beast::tcp_stream stream, std::shared_ptr<const admin_handlers> h) {
    beast::flat_buffer buffer(16 * 1024);
    for (;;) {
        stream.expires_after(std::chrono::seconds(10));
        bhttp::request<bhttp::empty_body> req;
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, use_tuple);
        if (ec) co_return;
        bhttp::response<bhttp::string_body> res;
        res.version(11);
        res.keep_alive(req.keep_alive());
        if (req.method() != bhttp::verb::get) {
            res.result(bhttp::status::method_not_allowed);
        } else if (req.target() == "/metrics") {
            res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
            res.body() = h->metrics();
        } else if (req.target() == "/status") {
            res.set(bhttp::field::content_type, "application/json");
            res.body() = h->status();
        } else {
            res.result(bhttp::status::not_found);
        }
        res.prepare_payload();
        auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
        if (wec || !res.keep_alive()) co_return;
    }
}

asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor acceptor,
                                  std::shared_ptr<const admin_handlers> h) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), serve(beast::tcp_stream(std::move(socket)), h),
                       [](std::exception_ptr e) {
                           if (e) spdlog::warn("admin connection ended by an exception");
                       });
    }
}

}  // namespace

void start_admin(asio::io_context& io, const asio::ip::tcp::endpoint& ep, admin_handlers handlers) {
    asio::ip::tcp::acceptor acceptor(io, ep, /*reuse_address=*/true);
    auto h = std::make_shared<const admin_handlers>(std::move(handlers));
    asio::co_spawn(io, accept_loop(std::move(acceptor), h), [](std::exception_ptr e) {
        if (e) spdlog::error("admin endpoint stopped by an exception");
    });
}

std::string prometheus_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace mailgate::observe
