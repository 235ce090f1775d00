#include "proxy/redirect_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "http/messages.hpp"
#include "http/request_head.hpp"
#include "observe/access_log.hpp"
#include "proxy/worker.hpp"

namespace mailgate::proxy {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

awaitable<void> serve_redirect(worker& w, asio::ip::tcp::socket socket,
                               std::shared_ptr<const runtime::snapshot> snap,
                               std::size_t listener_index, connection_ticket ticket) {
    const auto& listener = snap->listeners[listener_index];
    const auto& settings = *listener.http_redirect;
    observe::access_record rec;
    rec.time = std::chrono::system_clock::now();
    const auto start = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    const std::string peer_text = ec ? std::string("unknown") : peer.address().to_string();
    rec.client = rec.peer = peer_text;
    rec.listener = listener.name;

    // The whole exchange, head and reply, must fit in request_header + send: a redirect
    // port is where scanners linger, and it holds nothing worth waiting for.
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(snap->timeouts.request_header + snap->timeouts.send);
    deadline.async_wait([&socket](boost::system::error_code wec) {
        if (wec) return;
        boost::system::error_code cec;
        socket.cancel(cec);
    });

    boost::beast::flat_buffer buffer(snap->head_limits.request_line +
                                     snap->head_limits.request_headers + 8192);
    http::head_scanner scanner(snap->head_limits);
    http::scan_result scanned{};
    for (;;) {
        scanned = scanner.scan(
            std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
        if (scanned.status != http::scan_status::incomplete) break;
        if (buffer.size() >= buffer.max_size()) {
            scanned = {http::scan_status::reject, 0, 431, "head over buffer"};
            break;
        }
        const auto space = std::min<std::size_t>(4096, buffer.max_size() - buffer.size());
        auto [rec_ec, n] = co_await socket.async_read_some(buffer.prepare(space), use_tuple);
        if (rec_ec) co_return;  // closed, reset or timed out: nothing to answer
        buffer.commit(n);
    }

    std::string out;
    http::request_parser parser;
    http::request_info info;
    std::string normalized;
    std::string location;
    if (scanned.status == http::scan_status::reject) {
        rec.status = scanned.http_status;
        rec.error = scanned.reason;
    } else {
        const std::string_view head(static_cast<const char*>(buffer.data().data()),
                                    scanned.head_size);
        const auto parsed =
            http::parse_request_head(head, snap->head_limits, parser, info, normalized);
        rec.bytes_in = scanned.head_size;
        if (parser.is_header_done()) {
            rec.method = parser.get().method_string();
            rec.target = parser.get().target();
        }
        if (!parsed) {
            rec.status = parsed.http_status;
            rec.error = parsed.reason;
        } else {
            location = http::https_location(info, settings.host.value_or(""), settings.port);
            if (location.empty()) {
                rec.status = 400;
                rec.error = "no host to redirect to";
            } else {
                rec.status = 301;
            }
        }
    }
    if (rec.status == 301)
        http::build_redirect_reply(location, snap->headers, out);
    else
        http::build_error_reply(rec.status, snap->headers, {}, true, out);
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(out), use_tuple);
    rec.bytes_out = wn;
    deadline.cancel();
    // The request body, if any, is not read: close after the reply, like nginx's `return`.
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    rec.duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (w.access_log().enabled()) w.access_log().write(rec);
    (void)wec;
    (void)ticket;  // held by this frame until here: the connection counts until it closes
}

}  // namespace

void start_redirect_session(worker& w, asio::ip::tcp::socket socket, std::size_t listener_index,
                            connection_ticket ticket) {
    asio::co_spawn(w.io(),
                   serve_redirect(w, std::move(socket), w.snapshots().load(), listener_index,
                                  std::move(ticket)),
                   asio::detached);
}

}  // namespace mailgate::proxy
