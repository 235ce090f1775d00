#include "proxy/client_session.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "http/ascii.hpp"
#include "http/connection_auth.hpp"
#include "http/form_login.hpp"
#include "http/messages.hpp"
#include "http/ms_location.hpp"
#include "net/address.hpp"
#include "net/forwarded_for.hpp"
#include "net/proxy_protocol.hpp"
#include "observe/access_log.hpp"
#include "proxy/inline_io.hpp"
#include "proxy/worker.hpp"
#include "tls/client_context.hpp"

namespace mailgate::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t relay_chunk = 16 * 1024;
// Room before the data for a chunk-size line, and after it for the CRLF, so that one
// chunk goes out as one write (one TLS record) without copying.
constexpr std::size_t chunk_head_room = 20;
constexpr std::string_view last_chunk = "0\r\n\r\n";  // trailers are parsed and dropped
// After the data: the chunk's CRLF, and the last chunk when the body ends with this write.
constexpr std::size_t relay_buffer_size = chunk_head_room + relay_chunk + 2 + last_chunk.size();

// Bytes that a read would return without waiting: in the parser's buffer, or decrypted
// or read ahead inside OpenSSL.
bool readable_now(tls::stream& source, const io_buffer& buffer) {
    return buffer.size() > 0 || SSL_has_pending(source.native_handle()) != 0;
}
constexpr std::chrono::seconds shutdown_timeout{2};
constexpr std::chrono::seconds pool_look_after{1};
constexpr std::uint32_t upstream_header_limit = 64 * 1024;

// RPC over HTTP (R17): channels carry up to 2 GiB and idle for at least 15 minutes.
constexpr std::uint64_t rpc_channel_limit = 2ull * 1024 * 1024 * 1024;
constexpr std::chrono::minutes rpc_min_idle{15};

std::uint64_t body_limit(const exchange& ex) {
    return ex.rpc_channel ? rpc_channel_limit : ex.location->request_body;
}

// A limiter key for a client-chosen name (a device ID, a user): a SHA-256 prefix, so that
// no one can choose a name that shares another's counters.
policy::rate_limiter::key hashed_key(std::string_view name, std::uint32_t scope) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), digest);
    policy::rate_limiter::key key;
    std::memcpy(key.address.data(), digest, key.address.size());
    key.scope = scope;
    return key;
}

// R24: lower case, "DOMAIN\user" -> "user", a UPN kept as it is.
std::string normalize_user(std::string_view user) {
    if (const auto slash = user.rfind('\\'); slash != std::string_view::npos)
        user.remove_prefix(slash + 1);
    return http::ascii::to_lower_copy(user);
}

// What the log shows of a user: 16 hex digits of SHA-256(salt, user). The salt is made per
// process, so the hashes link a user's records without naming the user.
std::string salted_user_hash(std::string_view user) {
    static const auto salt = [] {
        std::array<unsigned char, 16> s{};
        RAND_bytes(s.data(), static_cast<int>(s.size()));
        return s;
    }();
    std::string buf(reinterpret_cast<const char*>(salt.data()), salt.size());
    buf.append(user);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(buf.data()), buf.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 8; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0xf]);
    }
    return out;
}

bool idempotent(bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get:
        case bhttp::verb::head:
        case bhttp::verb::options:
        case bhttp::verb::put:
        case bhttp::verb::delete_:
        case bhttp::verb::trace:
            return true;
        default:
            return false;
    }
}

bool no_response_body(bhttp::verb method, unsigned status) {
    return method == bhttp::verb::head || status == 204 || status == 304 || status < 200;
}

double ms_since(clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

// Writes "<hex size>\r\n" ending right before `data`, and "\r\n" right after its n bytes.
// Returns where the framed chunk starts.
char* frame_chunk(char* data, std::size_t n) {
    char hex[16];
    std::size_t len = 0;
    std::size_t v = n;
    do {
        hex[len++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v != 0);
    char* start = data - len - 2;
    for (std::size_t i = 0; i < len; ++i) start[i] = hex[len - 1 - i];
    start[len] = '\r';
    start[len + 1] = '\n';
    data[n] = '\r';
    data[n + 1] = '\n';
    return start;
}

}  // namespace

void start_session(worker& w, asio::ip::tcp::socket socket, std::size_t listener_index,
                   connection_ticket ticket) {
    boost::system::error_code ec;
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    auto session = std::make_unique<client_session>(w, std::move(socket), listener_index,
                                                    w.snapshots().load());
    session->adopt(std::move(ticket));
    auto* raw = session.get();
    asio::co_spawn(
        w.io(),
        [](std::unique_ptr<client_session> s) -> awaitable<void> {
            co_await s->run();
        }(std::move(session)),
        [&w, raw](std::exception_ptr e) {
            if (!e) return;
            w.counters().session_exceptions.fetch_add(1, std::memory_order_relaxed);
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("connection ended by an exception: {}", ex.what());
            } catch (...) {
                spdlog::error("connection ended by an unknown exception");
            }
            (void)raw;
        });
}

client_session::client_session(worker& w, asio::ip::tcp::socket socket, std::size_t listener_index,
                               std::shared_ptr<const runtime::snapshot> snap)
    : worker_(w),
      snap_(snap),
      listener_(&snap->listeners[listener_index]),
      listener_snap_(std::move(snap)),
      stream_(std::move(socket), *listener_->tls),
      buffer_(listener_snap_->head_limits.request_line +
              listener_snap_->head_limits.request_headers + 8192),
      idle_timeout_(listener_snap_->timeouts.idle) {
    boost::system::error_code ec;
    const auto remote = stream_.lowest_layer().remote_endpoint(ec);
    if (!ec) peer_ = remote.address();
    if (peer_.is_v6() && peer_.to_v6().is_v4_mapped())
        peer_ = asio::ip::make_address_v4(asio::ip::v4_mapped, peer_.to_v6());
    peer_text_ = ec ? std::string("unknown") : peer_.to_string();
    socket_peer_text_ = peer_text_;
}

void client_session::on_deadline() {
    // The deadline stays: if this cancel finds no operation pending (one just completed), the
    // next tick cancels again, until the session arms a new deadline for its next step.
    timed_out_ = true;
    boost::system::error_code ec;
    stream_.lowest_layer().cancel(ec);
    if (upstream_) upstream_->stream.lowest_layer().cancel(ec);
}

void client_session::close_idle() {
    closed_by_drain_ = true;
    boost::system::error_code ec;
    stream_.lowest_layer().cancel(ec);
}

awaitable<void> client_session::run() {
    worker_.enter(this);
    struct leave_on_exit {
        worker& w;
        client_session* s;
        ~leave_on_exit() { w.leave(s); }
    } guard{worker_, this};

    phase_ = phase::handshake;
    arm(snap_->timeouts.tls_handshake);
    if (listener_->proxy_protocol != config::proxy_protocol_mode::off &&
        !co_await read_proxy_header()) {
        abort_connection();
        co_return;
    }
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
        spdlog::debug("TLS handshake with {} failed: {}", peer_text_, ec.message());
        co_return;
    }
    tls_version_ = SSL_get_version(stream_.native_handle());
    tls_cipher_ = SSL_get_cipher_name(stream_.native_handle());

    bool first = true;
    while (co_await serve_one(first)) first = false;
    if (!aborted_) co_await shutdown();
}

awaitable<bool> client_session::read_proxy_header() {
    // Only a trusted load balancer may vouch for a client address.
    if (!listener_->trusted_proxies.contains(peer_)) {
        spdlog::debug("PROXY header expected from untrusted peer {}: closed", peer_text_);
        co_return false;
    }
    const auto mode = [&] {
        switch (listener_->proxy_protocol) {
            case config::proxy_protocol_mode::v1:
                return net::proxy_protocol_mode::v1;
            case config::proxy_protocol_mode::v2:
                return net::proxy_protocol_mode::v2;
            case config::proxy_protocol_mode::any:
                return net::proxy_protocol_mode::any;
            case config::proxy_protocol_mode::off:
                break;
        }
        return net::proxy_protocol_mode::off;
    }();
    // The header is peeked, never over-read: the bytes after it are the TLS ClientHello, and
    // the TLS stream must find them in the socket. Bytes of an incomplete header are consumed.
    auto& socket = stream_.next_layer();
    std::array<char, net::proxy_header_max_size> buf;
    std::size_t have = 0;
    for (;;) {
        auto [wec] = co_await socket.async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
        if (wec) co_return false;
        const auto n = ::recv(socket.native_handle(), buf.data() + have, buf.size() - have,
                              MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) co_return false;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            co_return false;
        }
        const auto r = net::parse_proxy_header(std::string_view(buf.data(), have + n), mode);
        if (r.status == net::proxy_parse_status::invalid) {
            spdlog::debug("invalid PROXY header from {}: {}", peer_text_, r.reason);
            co_return false;
        }
        const std::size_t take = r.status == net::proxy_parse_status::done
                                     ? r.consumed - have
                                     : static_cast<std::size_t>(n);
        if (::recv(socket.native_handle(), buf.data() + have, take, MSG_DONTWAIT) !=
            static_cast<ssize_t>(take))
            co_return false;
        have += take;
        if (r.status == net::proxy_parse_status::done) {
            if (!r.header.local) {
                peer_ = r.header.source.address();
                peer_text_ = peer_.to_string();
            }
            co_return true;
        }
        if (have == buf.size()) co_return false;
    }
}

// The request pipeline, top to bottom. Each phase either lets the request go on or ends
// it with a reply or a close; the access log record is written whatever happened.
awaitable<bool> client_session::serve_one(bool first) {
    snap_ = worker_.snapshots().load();
    timed_out_ = false;
    exchange ex;

    // Phase: read_head (scanner, Beast parser, validator).
    http::head_scanner scanner(snap_->head_limits);
    const auto scanned = co_await read_head(scanner, first, ex);
    if (scanned.status == http::scan_status::incomplete) co_return false;  // closed or idle
    if (scanned.status == http::scan_status::reject) {
        ex.error = scanned.reason;
        co_await reply(ex, scanned.http_status, true);
        finish(ex);
        co_return false;
    }
    const std::string_view head(static_cast<const char*>(buffer_.data().data()), scanned.head_size);
    const auto parsed =
        http::parse_request_head(head, snap_->head_limits, ex.parser, ex.info, ex.normalized_path);
    buffer_.consume(scanned.head_size);
    ex.bytes_in = scanned.head_size;
    ex.head_parsed = ex.parser.is_header_done();
    if (!parsed) {
        ex.error = parsed.reason;
        co_await reply(ex, parsed.http_status, true);
        finish(ex);
        co_return false;
    }
    worker_.counters().requests.fetch_add(1, std::memory_order_relaxed);
    ex.client = resolve_client(ex.parser.get());
    ex.client_text = ex.client == peer_ ? peer_text_ : ex.client.to_string();
    ex.parser.eager(true);  // the body: parse all that has arrived in one go
    const bool has_body = http::has_body(ex.info);

    // Phase: route (longest prefix of the normalized path; the body limit of that location).
    ex.location =
        snap_->route(ex.normalized_path == "*" ? std::string_view("/") : ex.normalized_path);
    if (ex.location == nullptr) {
        ex.error = "no location";
        const bool keep = co_await reply(ex, 404, has_body);
        finish(ex);
        co_return keep;
    }
    // R17: RPC over HTTP channels belong to the RPC proxy only. There, a channel declares a
    // huge Content-Length it never means to fill, so body limits do not apply (2 GiB cap).
    const auto method = ex.parser.get().method_string();
    ex.rpc_channel =
        beast::iequals(method, "RPC_IN_DATA") || beast::iequals(method, "RPC_OUT_DATA");
    if (ex.rpc_channel && ex.normalized_path != "/rpc/rpcproxy.dll") {
        ex.error = "RPC channel method outside /rpc/rpcproxy.dll";
        const bool keep = co_await reply(ex, 405, has_body);
        finish(ex);
        co_return keep;
    }
    if (ex.info.framing == http::body_framing::content_length &&
        ex.info.content_length > body_limit(ex)) {
        ex.error = "request body over limit";
        co_await reply(ex, 413, true);
        finish(ex);
        co_return false;
    }
    idle_timeout_ = ex.location->idle;
    if (ex.rpc_channel) idle_timeout_ = std::max<clock::duration>(idle_timeout_, rpc_min_idle);

    // Phase: decode_eas (ActiveSync locations only).
    if (ex.location->kind == config::location_kind::activesync) {
        if (const int status = decode_activesync(ex); status != 0) {
            const bool keep = co_await reply(ex, status, has_body);
            finish(ex);
            co_return keep;
        }
    }

    // Phase: request_policy (global rules, then the location's ip_restrictions and rules).
    bool keep_alive_after_denial = false;
    if (!co_await apply_policy(ex, keep_alive_after_denial)) {
        finish(ex);
        co_return keep_alive_after_denial;
    }

    // Phase: dynamic_limits (per client address: rate, concurrency, block).
    if (!co_await apply_dynamic_limits(ex, keep_alive_after_denial)) {
        finish(ex);
        co_return keep_alive_after_denial;
    }

    // Phase: auth_throttle (a user past auth_failure_limits is answered here).
    if (!co_await apply_auth_throttle(ex, keep_alive_after_denial)) {
        finish(ex);
        co_return keep_alive_after_denial;
    }

    // Phases: upstream peer, upstream request, forward, response policy.
    const bool keep_alive = co_await forward(ex, *ex.location);
    finish(ex);
    co_return keep_alive;
}

awaitable<http::scan_result> client_session::read_head(http::head_scanner& scanner, bool first,
                                                       exchange& ex) {
    bool started = false;
    while (true) {
        if (buffer_.size() > 0) {
            const std::string_view bytes(static_cast<const char*>(buffer_.data().data()),
                                         buffer_.size());
            auto r = scanner.scan(bytes);
            if (r.status != http::scan_status::incomplete) co_return r;
            if (!started) {
                // The whole head must arrive within request_header of its first byte.
                started = true;
                ex.start = clock::now();
                ex.wall = std::chrono::system_clock::now();
                arm(snap_->timeouts.request_header);
            }
            phase_ = phase::read_head;
        } else {
            phase_ = phase::idle;
            if (worker_.draining() && !first) co_return http::scan_result{};
            arm(first ? snap_->timeouts.request_header : idle_timeout_);
            // Between requests a connection holds no buffer: it waits for the socket to turn
            // readable first (OpenSSL has released its own record buffers by then), so that
            // thousands of idle keep-alive clients cost little more than their sockets.
            relay_buffer_.reset();
            buffer_.shrink_to_fit();
            if (SSL_has_pending(stream_.native_handle()) == 0) {
                auto [wec] = co_await stream_.lowest_layer().async_wait(
                    asio::ip::tcp::socket::wait_read, use_tuple);
                if (wec) co_return http::scan_result{};
            }
        }
        if (buffer_.size() >= buffer_.max_size()) {
            co_return http::scan_result{http::scan_status::reject, 0, 431, "head over buffer"};
        }
        const auto space = std::min<std::size_t>(16 * 1024, buffer_.max_size() - buffer_.size());
        auto [ec, n] = co_await inline_io::read_some(stream_, buffer_.prepare(space), turn_);
        if (ec) {
            if (timed_out_ && buffer_.size() > 0) {
                timed_out_ = false;
                co_return http::scan_result{http::scan_status::reject, 0, 408,
                                            "request head timeout"};
            }
            co_return http::scan_result{};
        }
        buffer_.commit(n);
    }
}

awaitable<std::unique_ptr<upstream_connection>> client_session::connect_upstream(
    const runtime::compiled_upstream& up, upstream_pool& pool, std::size_t server, exchange& ex) {
    const auto& target = up.servers[server];
    ex.upstream = target.label;
    auto conn = std::make_unique<upstream_connection>(worker_.io().get_executor(), *up.tls, server);
    upstream_ = conn.get();
    phase_ = phase::upstream_connect;
    arm(snap_->timeouts.upstream_connect);
    auto [ec] = co_await conn->stream.lowest_layer().async_connect(target.endpoint, use_tuple);
    if (ec) {
        upstream_ = nullptr;
        pool.mark_down(server, clock::now());
        ex.error =
            "upstream connect " + target.label + ": " + (timed_out_ ? "timeout" : ec.message());
        spdlog::warn("{}", ex.error);
        co_return nullptr;
    }
    boost::system::error_code opt_ec;
    conn->stream.lowest_layer().set_option(asio::ip::tcp::no_delay(true), opt_ec);
    if (!tls::prepare_client_stream(conn->stream.native_handle(), up.server_name)) {
        upstream_ = nullptr;
        ex.error = "upstream server_name '" + up.server_name + "' refused by OpenSSL";
        co_return nullptr;
    }
    auto [hec] = co_await conn->stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
    upstream_ = nullptr;
    if (hec) {
        pool.mark_down(server, clock::now());
        ex.error =
            "upstream TLS " + target.label + ": " +
            (timed_out_ ? std::string("timeout")
                        : tls::describe_handshake_failure(conn->stream.native_handle(), hec));
        spdlog::warn("{}", ex.error);
        co_return nullptr;
    }
    co_return conn;
}

awaitable<bool> client_session::forward(exchange& ex, const runtime::compiled_location& loc) {
    const auto& up = snap_->upstreams[loc.upstream];
    const auto pools = worker_.pools_for(snap_);
    auto& pool = pools->pools[loc.upstream];
    const auto& req = ex.parser.get();
    const bool has_body = http::has_body(ex.info);
    out_.clear();  // the request head, kept until the response for a retry on a fresh connection
    http::build_upstream_request(req.base(), ex.info, ex.client_text, up.server_name, out_);

    std::unique_ptr<upstream_connection> conn;
    std::optional<http::response_parser> rp;
    std::size_t server = pool.pick_server(clock::now());
    // R18: the pinned connection carries every request for its upstream (matched by name,
    // so a reload keeps it). When it has closed, so does the client connection: the client
    // restarts its handshake, never on a connection another client authenticated.
    const bool pinned = pinned_ && pinned_snap_->upstreams[pinned_upstream_].name == up.name &&
                        pinned_->server < up.servers.size();
    if (pinned) {
        conn = std::move(pinned_);
        pinned_snap_.reset();
        if (!still_open(*conn)) {
            ex.error = "pinned upstream connection closed";
            abort_connection();
            co_return false;
        }
    }
    bool pin = pinned || http::carries_connection_bound_auth(req);
    bool body_skipped = false;  // the upstream gave its final answer before wanting the body
    const bool retriable = !has_body && idempotent(req.method());
    for (int attempt = 0; attempt < 2; ++attempt) {
        // An idempotent request without a body is retried on a fresh connection when the
        // pooled one proves closed (below), so on a connection that was busy less than a
        // second ago it skips the look at the socket (a syscall). Anything an upstream sends
        // on an idle connection (its idle-timeout close, a stray 408, bytes past a misframed
        // response) is looked for on every other request and after a second of idleness.
        if (!pinned)
            conn = attempt == 0 ? pool.take(server, clock::now(),
                                            retriable ? pool_look_after : clock::duration{})
                                : nullptr;
        const bool reused = conn != nullptr && !pinned;
        if (!conn) {
            conn = co_await connect_upstream(up, pool, server, ex);
            // A server that cannot be reached is skipped for this request too: each other
            // server gets one try (nginx's proxy_next_upstream error timeout).
            for (std::size_t tried = 1; !conn && tried < up.servers.size(); ++tried) {
                timed_out_ = false;
                server = pool.pick_server(clock::now());
                conn = co_await connect_upstream(up, pool, server, ex);
            }
            if (!conn) {
                const bool timeout = std::exchange(timed_out_, false);
                co_return co_await reply(ex, timeout ? 504 : 502, has_body);
            }
        } else {
            ex.upstream = up.servers[conn->server].label;
        }
        upstream_ = conn.get();
        const auto t0 = clock::now();

        phase_ = phase::upstream_write;
        arm(snap_->timeouts.send);
        auto [wec, wn] = co_await inline_io::write_all(conn->stream, asio::buffer(out_), turn_);
        if (wec) {
            upstream_ = nullptr;
            if (reused && !timed_out_) continue;  // the pooled connection was stale
            ex.error = "upstream write: " + wec.message();
            timed_out_ = false;
            co_await reply(ex, 502, true);
            co_return false;
        }

        body_skipped = false;
        if (has_body) {
            if (ex.info.expect_continue) {
                // R27: the upstream decides. Its 100 Continue is relayed and the body follows;
                // a final answer instead (401, 413, 417...) goes to the client with no body
                // byte sent, as Exchange means it to.
                phase_ = phase::upstream_response;
                arm(loc.upstream_response);
                int status = 0;
                do {
                    rp.emplace();
                    rp->header_limit(upstream_header_limit);
                    rp->body_limit(boost::none);
                    auto [hec, hn] = co_await inline_io::read_message<true>(
                        conn->stream, conn->buffer, *rp, turn_);
                    if (hec) {
                        upstream_ = nullptr;
                        const bool timeout = std::exchange(timed_out_, false);
                        ex.error = timeout ? "upstream response timeout"
                                           : "upstream response: " + hec.message();
                        co_await reply(ex, timeout ? 504 : 502, true);
                        co_return false;
                    }
                    status = static_cast<int>(rp->get().result_int());
                } while (status > 100 && status < 200 && status != 101);
                if (status == 100) {
                    rp.reset();
                    phase_ = phase::reply;
                    arm(snap_->timeouts.send);
                    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                    auto [cec, cn] =
                        co_await asio::async_write(stream_, asio::buffer(cont), use_tuple);
                    if (cec) {
                        upstream_ = nullptr;
                        co_return false;
                    }
                } else {
                    body_skipped = true;
                    ex.info.keep_alive = false;  // the unread body ends the connection
                    if (status == 101) {
                        upstream_ = nullptr;
                        ex.error = "upstream response: 101 refused";
                        co_await reply(ex, 502, true);
                        co_return false;
                    }
                }
            }
        }
        if (has_body && ex.prefetched_body > 0) {
            // A login form read ahead by the auth throttle: it goes as it came.
            arm(snap_->timeouts.send);
            auto [pec, pn] = co_await inline_io::write_all(
                conn->stream,
                asio::buffer(relay_buffer_.get() + chunk_head_room, ex.prefetched_body), turn_);
            ex.bytes_in += pn;
            if (pec) {
                upstream_ = nullptr;
                if (reused && !timed_out_) continue;
                ex.error = "upstream write failed during the request body";
                timed_out_ = false;
                co_await reply(ex, 502, true);
                co_return false;
            }
        } else if (has_body && !body_skipped) {
            phase_ = phase::read_body;
            const auto r =
                co_await relay_body(ex.parser, stream_, buffer_, idle_timeout_, conn->stream,
                                    ex.info.framing == http::body_framing::chunked, body_limit(ex),
                                    ex.rpc_channel ? 0 : snap_->timeouts.body_min_rate);
            ex.bytes_in += r.bytes;
            if (r.status != relay_status::ok) {
                upstream_ = nullptr;
                timed_out_ = false;
                if (r.status == relay_status::too_large) {
                    ex.error = "request body over limit";
                    co_await reply(ex, 413, true);
                } else if (r.status == relay_status::too_slow) {
                    ex.error = "request body slower than body_min_rate";
                    co_await reply(ex, 408, true);
                } else if (r.status == relay_status::write_failed) {
                    ex.error = "upstream write failed during the request body";
                    co_await reply(ex, 502, true);
                } else {
                    ex.error = "client request body read failed";
                }
                co_return false;
            }
        }

        if (body_skipped) {
            ex.upstream_ms = ms_since(t0);
            conn->requests++;
            break;
        }
        // The wait may last an hour (a Ping): hold no relay or head buffer through it.
        relay_buffer_.reset();
        if (buffer_.size() == 0) buffer_.shrink_to_fit();
        phase_ = phase::upstream_response;
        arm(loc.upstream_response);
        rp.emplace();
        rp->header_limit(upstream_header_limit);
        rp->body_limit(boost::none);
        if (req.method() == bhttp::verb::head) rp->skip(true);
        // No OpenSSL read buffer is held through the wait: tls::stream frees it whenever a
        // read finds nothing. The request went out in place a moment ago: the other
        // connections run first, which gives the upstream the time to answer, so that the read
        // finds the response instead of costing a failed read() and a wait.
        co_await asio::post(worker_.io(), asio::use_awaitable);
        auto [rec, rn] =
            co_await inline_io::read_message<true>(conn->stream, conn->buffer, *rp, turn_);
        // Interim 1xx responses (other than 101, which cannot happen without Upgrade) are
        // consumed here: a 100 Continue was relayed above, or comes unasked.
        while (!rec && rp->get().result_int() >= 100 && rp->get().result_int() < 200 &&
               rp->get().result_int() != 101) {
            rp.emplace();
            rp->header_limit(upstream_header_limit);
            rp->body_limit(boost::none);
            if (req.method() == bhttp::verb::head) rp->skip(true);
            std::tie(rec, rn) =
                co_await inline_io::read_message<true>(conn->stream, conn->buffer, *rp, turn_);
        }
        if (rec || rp->get().result_int() == 101) {
            upstream_ = nullptr;
            const bool timeout = std::exchange(timed_out_, false);
            const bool nothing_came = rn == 0 && conn->buffer.size() == 0;
            if (reused && !timeout && retriable && nothing_came) continue;
            ex.error = timeout ? "upstream response timeout"
                               : "upstream response: " +
                                     (rec ? rec.message() : std::string("101 refused"));
            spdlog::warn("{} ({})", ex.error, ex.upstream);
            co_await reply(ex, timeout ? 504 : 502, true);
            co_return false;
        }
        ex.upstream_ms = ms_since(t0);
        conn->requests++;
        break;
    }
    if (!rp) {
        co_await reply(ex, 502, true);
        co_return false;
    }

    pin = pin || (rp->get().result_int() == 401 && http::offers_connection_bound_auth(rp->get()));
    note_auth_result(ex, rp->get());
    if (rp->get().result_int() == 451) {
        // R12: the device is told where to go next; never an internal name.
        auto& res = rp->get();
        const std::string_view public_host =
            up.external_host.empty() ? ex.info.host : std::string_view(up.external_host);
        if (auto it = res.find("X-MS-Location"); it != res.end() && !public_host.empty()) {
            const std::string_view value(it->value().data(), it->value().size());
            if (auto rewritten = http::rewrite_ms_location(value, up.internal_names, public_host))
                res.set("X-MS-Location", *rewritten);
        }
    }
    bool reusable = false;
    bool keep_alive = co_await relay_response(ex, loc, *conn, *rp, reusable);
    if (body_skipped) reusable = false;  // it may still wait for the body it declined
    upstream_ = nullptr;
    if (pin) {
        if (reusable) {
            pinned_ = std::move(conn);  // replaces (closes) one pinned to another upstream
            pinned_snap_ = snap_;
            pinned_upstream_ = loc.upstream;
        } else {
            keep_alive = false;  // the upstream side of the pair closed: close ours too
        }
    } else if (reusable) {
        pool.give_back(std::move(conn), clock::now());
    }
    co_return keep_alive;
}

awaitable<bool> client_session::relay_response(exchange& ex, const runtime::compiled_location& loc,
                                               upstream_connection& conn, http::response_parser& rp,
                                               bool& upstream_reusable) {
    const auto& res = rp.get();
    const auto status = res.result_int();
    const auto method = ex.parser.get().method();
    using http::response_framing;
    response_framing framing;
    std::uint64_t length = 0;
    const bool client_http11 = ex.parser.get().version() >= 11;
    if (no_response_body(method, status)) {
        framing = response_framing::none;
    } else if (rp.content_length() && !rp.chunked()) {
        framing = response_framing::content_length;
        length = *rp.content_length();
    } else {
        // Chunked or read-until-close upstream bodies: re-chunked for HTTP/1.1 clients; an
        // HTTP/1.0 client cannot read chunks, so its body ends when the connection closes.
        framing = client_http11 ? response_framing::chunked : response_framing::close;
    }
    const bool keep_alive =
        ex.info.keep_alive && !worker_.draining() && framing != response_framing::close;

    out_.clear();
    http::build_client_response(res.base(), ex.location->headers, listener_->hsts, framing, length,
                                keep_alive, out_);
    ex.status = static_cast<int>(status);
    phase_ = phase::relay_response;
    // With body bytes already at hand the head goes out with them; otherwise now, so that a
    // client waiting on a slow or streaming body (a Ping, MAPI chunks) sees it at once.
    const bool with_body =
        framing == response_framing::content_length && readable_now(conn.stream, conn.buffer);
    if (!with_body) {
        arm(snap_->timeouts.send);
        auto [wec, wn] = co_await inline_io::write_all(stream_, asio::buffer(out_), turn_);
        ex.bytes_out += wn;
        if (wec) {
            ex.error = "client write failed";
            co_return false;
        }
        out_.clear();
    }
    if (framing == response_framing::none) {
        upstream_reusable = rp.is_done() && rp.keep_alive() && conn.buffer.size() == 0;
        co_return keep_alive;
    }
    const auto read_timeout = ex.rpc_channel
                                  ? std::max<clock::duration>(loc.upstream_response, rpc_min_idle)
                                  : clock::duration(loc.upstream_response);
    const auto r = co_await relay_body(rp, conn.stream, conn.buffer, read_timeout, stream_,
                                       framing == response_framing::chunked,
                                       std::numeric_limits<std::uint64_t>::max(), 0, &out_);
    ex.bytes_out += r.bytes + r.head_bytes;
    if (r.status != relay_status::ok) {
        timed_out_ = false;
        ex.error = r.status == relay_status::read_failed
                       ? "upstream failed during the response body"
                       : "client write failed";
        co_return false;  // the client sees the connection close: the body is incomplete
    }
    upstream_reusable = rp.keep_alive() && conn.buffer.size() == 0;
    co_return keep_alive;
}

template <class Parser, class Source, class Sink>
awaitable<client_session::relay_result> client_session::relay_body(
    Parser& parser, Source& source, io_buffer& source_buffer, clock::duration read_timeout,
    Sink& sink, bool chunked, std::uint64_t limit, std::uint64_t min_rate, std::string* head) {
    relay_result result;
    if (!relay_buffer_) relay_buffer_ = buffer_pool::block(relay_buffer_size);
    char* const data = relay_buffer_.get() + chunk_head_room;
    // Slow POST: each byte buys 1/min_rate s past a grace, so a client trickling a byte per
    // read timeout cannot hold the connection (and an upstream slot) for hours.
    const auto grace_end = clock::now() + snap_->timeouts.request_header;
    std::size_t pending = 0;  // read into the relay buffer, not yet written
    bool last_sent = false;   // the last chunk went out with the data
    // Beast reads as much as the buffer has room for, at least 512 bytes: a buffer shrunk
    // while idle would cut a 16 KiB TLS record into 32 reads. Room for a record; given back
    // when the body is through.
    source_buffer.reserve(std::min(source_buffer.max_size(), relay_chunk + 1024));
    struct shrink_after {
        io_buffer& b;
        ~shrink_after() {
            if (b.size() == 0) b.shrink_to_fit();
        }
    } shrink{source_buffer};
    while (!parser.is_done()) {
        auto& body = parser.get().body();
        body.data = data + pending;
        body.size = relay_chunk - pending;
        arm(read_timeout);
        bool rate_armed = false;
        if (min_rate > 0) {
            const auto earned =
                std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                    static_cast<double>(result.bytes + pending) / static_cast<double>(min_rate)));
            if (grace_end + earned < deadline_) {
                arm_at(grace_end + earned);
                rate_armed = true;
            }
        }
        auto [ec, n] =
            co_await inline_io::read_message<false>(source, source_buffer, parser, turn_);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
            result.status =
                rate_armed && timed_out_ ? relay_status::too_slow : relay_status::read_failed;
            co_return result;
        }
        pending += relay_chunk - pending - body.size;
        if (result.bytes + pending > limit) {
            result.status = relay_status::too_large;
            co_return result;
        }
        // What is already here goes out with this write: one TLS record and one syscall
        // instead of one per piece the parser hands over.
        // Not for chunked bodies: there the bytes at hand may be only the chunk's CRLF, and the
        // next read would wait for the upstream's next chunk (MAPI sends one every few s).
        if (!chunked && !parser.is_done() && pending < relay_chunk &&
            readable_now(source, source_buffer))
            continue;
        if (pending == 0 && !parser.is_done()) continue;
        const char* start = data;
        std::size_t len = pending;
        if (chunked) {
            start = pending > 0 ? frame_chunk(data, pending) : data;
            len = pending > 0 ? static_cast<std::size_t>(data + pending + 2 - start) : 0;
            if (parser.is_done()) {
                std::memcpy(const_cast<char*>(start) + len, last_chunk.data(), last_chunk.size());
                len += last_chunk.size();
            }
        }
        if (head != nullptr && !head->empty()) {
            // The response head and the first body bytes: one record.
            head->append(start, len);
            start = head->data();
            len = head->size();
        }
        arm(snap_->timeouts.send);
        auto [wec, wn] = co_await inline_io::write_all(sink, asio::buffer(start, len), turn_);
        if (head != nullptr && !head->empty()) {
            result.head_bytes = std::min(wn, head->size() - len);
            head->clear();
        }
        if (wec) {
            result.status = relay_status::write_failed;
            co_return result;
        }
        result.bytes += pending;
        pending = 0;
        last_sent = chunked && parser.is_done();
    }
    // A body the parser finished without a read (or a chunked body's end still owed). The
    // head string keeps its capacity for the next request's heads.
    const std::size_t head_left = head != nullptr ? head->size() : 0;
    std::string_view tail = chunked && !last_sent ? last_chunk : std::string_view();
    if (head_left > 0) tail = std::string_view(head->append(tail));
    if (!tail.empty()) {
        arm(snap_->timeouts.send);
        auto [wec, wn] = co_await inline_io::write_all(sink, asio::buffer(tail), turn_);
        if (head != nullptr) result.head_bytes += wn;
        if (wec) result.status = relay_status::write_failed;
    }
    if (head != nullptr) head->clear();
    co_return result;
}

asio::ip::address client_session::resolve_client(const bhttp::fields& fields) const {
    if (listener_->trusted_proxies.empty()) return peer_;
    // Every X-Forwarded-For field, in order, without copying.
    std::array<std::string_view, 8> values;
    std::size_t n = 0;
    for (const auto& f : fields) {
        if (!beast::iequals(f.name_string(), "x-forwarded-for")) continue;
        // More fields than any real proxy chain writes: believe none of them.
        if (n == values.size()) return peer_;
        values[n++] = f.value();
    }
    return net::resolve_client(peer_, listener_->trusted_proxies,
                               std::span<const std::string_view>(values.data(), n));
}

int client_session::decode_activesync(exchange& ex) {
    const auto& req = ex.parser.get();
    // R1: ActiveSync is POST (commands) and OPTIONS (discovery); nothing else reaches it.
    const auto method = req.method();
    if (method != bhttp::verb::post && method != bhttp::verb::options) {
        ex.error = "method not allowed on an ActiveSync location";
        return 405;
    }
    const auto result = eas::decode(ex.info.query, req, method == bhttp::verb::options, eas_);
    if (result != eas::decode_error::ok) {
        ex.error = "ActiveSync query: ";
        ex.error += eas::describe(result);
        return 400;
    }
    // R10: a base64 query whose headers disagree is forwarded as it is, and said so.
    if (eas_.headers_conflict)
        ex.error = "ActiveSync headers disagree with the base64 query (forwarded)";
    ex.eas = &eas_;
    return 0;
}

awaitable<bool> client_session::apply_policy(exchange& ex, bool& keep_alive) {
    const auto& req = ex.parser.get();
    policy::request_facts facts;
    facts.client = ex.client;
    facts.method = req.method_string();
    if (auto it = req.find(bhttp::field::user_agent); it != req.end())
        facts.user_agent = it->value();
    facts.query = ex.info.query;
    facts.fields = &req;
    facts.eas = ex.eas;
    facts.path = ex.normalized_path;
    std::string decoded_uri;  // only when a rule reads it (the Exchange shields do)
    if (snap_->policy->needs_decoded_uri()) {
        decoded_uri = policy::decode_uri(ex.normalized_path, ex.info.query);
        facts.decoded_uri = decoded_uri;
    }
    snap_->policy->evaluate(facts, ex.location->index, ex.verdict);
    worker_.count_policy(snap_, ex.verdict);

    const auto* rule = ex.verdict.decided_by;
    if (rule == nullptr && ex.verdict.reported_count > 0) rule = ex.verdict.reported[0];
    if (rule != nullptr) {
        ex.rule = rule->name;
        ex.action = policy::to_string(rule->act);
        ex.mode = policy::to_string(rule->mode);
    }
    const auto outcome = ex.verdict.outcome();
    if (outcome == policy::action::allow) co_return true;
    ex.error = "denied by policy";
    if (outcome == policy::action::abort) {
        abort_connection();
        co_return false;
    }
    // A denied request with a body closes the connection rather than reading the body.
    keep_alive = co_await reply(ex, policy::status_of(outcome), http::has_body(ex.info));
    co_return false;
}

awaitable<bool> client_session::apply_dynamic_limits(exchange& ex, bool& keep_alive) {
    if (const auto* d = ex.location->dynamic_ip.get(); d && !d->exempt.contains(ex.client)) {
        const auto key = policy::rate_limiter::make_key(ex.client, d->scope);
        if (!co_await apply_limit(ex, *d, key, ex.slot, worker_.counters().dynamic_ip, keep_alive))
            co_return false;
    }
    // R26: autodiscover.json without credentials answers whether an address exists, so
    // anonymous requests for it are limited per client address wherever they are routed.
    if (const auto* anon = snap_->anonymous_autodiscover.get();
        anon && beast::iequals(ex.normalized_path, "/autodiscover/autodiscover.json") &&
        !ex.parser.get().count(bhttp::field::authorization) && !anon->exempt.contains(ex.client)) {
        const auto key = policy::rate_limiter::make_key(ex.client, anon->scope);
        if (!co_await apply_limit(ex, *anon, key, ex.anonymous_slot, worker_.counters().dynamic_ip,
                                  keep_alive))
            co_return false;
    }
    const auto* dev = ex.location->dynamic_device.get();
    if (dev && ex.eas != nullptr && !ex.eas->device_id.empty() &&
        !dev->exempt.contains(ex.client)) {
        // Device IDs are chosen by the client: keyed by a SHA-256 prefix, so that no one can
        // craft an ID that shares a victim device's counters.
        const auto key = hashed_key(ex.eas->device_id_hex, dev->scope);
        if (!co_await apply_limit(ex, *dev, key, ex.device_slot, worker_.counters().dynamic_device,
                                  keep_alive))
            co_return false;
    }
    co_return true;
}

awaitable<bool> client_session::apply_limit(exchange& ex, const runtime::compiled_dynamic_ip& d,
                                            const policy::rate_limiter::key& key,
                                            limiter_slot& slot,
                                            std::atomic<std::uint64_t> (&counts)[3][2],
                                            bool& keep_alive) {
    // A held ActiveSync Ping is one request per device per hour: it counts against the rate
    // but never as concurrent load, or a carrier NAT full of phones would lock itself out.
    const bool long_poll = ex.eas != nullptr && ex.eas->cmd == "Ping";
    auto decision =
        co_await worker_.limits().acquire(key, d.limits, !long_poll, snap_->store_timeout, slot);
    if (!decision) {
        decision.emplace();
        decision->outcome = store_unanswered(ex);
        decision->retry_after = 1;
    }
    if (!decision->denied()) co_return true;
    const auto reason = decision->outcome == policy::limit_outcome::rate         ? 0
                        : decision->outcome == policy::limit_outcome::concurrent ? 1
                        : decision->outcome == policy::limit_outcome::blocked    ? 2
                                                                                 : 3;
    const bool enforce = d.mode == config::rule_mode::enforce;
    if (reason < 3) counts[reason][enforce ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
    static constexpr std::array<std::string_view, 4> why{
        "over max_requests", "over max_concurrent_requests", "blocked after exceeding a limit",
        "limit store unavailable (on_store_error: deny)"};
    // A rule that already reported keeps its place in the log only if this one only reports.
    if (enforce || ex.rule.empty()) {
        ex.rule = d.rule;
        ex.action = policy::to_string(d.act);
        ex.mode = policy::to_string(d.mode);
    }
    if (!enforce) co_return true;
    ex.error = why[reason];
    if (d.act == config::action::abort) {
        abort_connection();
        co_return false;
    }
    if (d.act == config::action::too_many_requests) ex.retry_after = decision->retry_after;
    keep_alive = co_await reply(ex, policy::status_of(d.act), http::has_body(ex.info));
    co_return false;
}

awaitable<bool> client_session::apply_auth_throttle(exchange& ex, bool& keep_alive) {
    const auto* a = ex.location->auth_failures.get();
    if (a == nullptr) co_return true;
    const auto& req = ex.parser.get();
    // The user whose password this request tries: Basic credentials, an NTLM type 3 message
    // (type 1 is a handshake step, not an attempt), the OWA logon form, else the ActiveSync
    // user.
    std::string user;
    std::string_view challenge;
    for (const auto& f : req) {
        if (f.name() != bhttp::field::authorization) continue;
        const std::string_view v(f.value().data(), f.value().size());
        if (auto basic = eas::authorization_basic_user(v); !basic.empty()) {
            user = std::move(basic);
            challenge = "WWW-Authenticate: Basic realm=\"mail\"\r\n";
        } else if (auto ntlm = http::ntlm_authenticate_user(v)) {
            user = std::move(*ntlm);
            challenge = "WWW-Authenticate: NTLM\r\n";
        }
        break;
    }
    if (user.empty() && http::is_forms_login(req.method_string(), ex.normalized_path) &&
        ex.info.framing == http::body_framing::content_length && ex.info.content_length > 0 &&
        ex.info.content_length <= http::max_login_form && !ex.info.expect_continue) {
        // The user is in the form: read it (a few hundred bytes) before anything is sent,
        // so that a user in cool-off never reaches Active Directory.
        if (!co_await prefetch_body(ex)) co_return false;
        const std::string_view form(relay_buffer_.get() + chunk_head_room, ex.prefetched_body);
        ex.forms_login = true;
        user = http::form_field(form, "username").value_or("");
    }
    if (user.empty() && ex.eas != nullptr && !req.count(bhttp::field::authorization))
        user = std::string(ex.eas->user);
    if (user.empty()) co_return true;
    ex.auth_user = normalize_user(user);
    ex.auth_key = hashed_key(ex.auth_user, a->scope);
    ex.auth_user_logged = snap_->log_user_names ? ex.auth_user : salted_user_hash(ex.auth_user);
    std::uint32_t cool_off = co_await cool_off_of(ex, ex.auth_key);
    std::string_view why = "user in cool-off after failed logins";
    if (cool_off == 0 && a->max_failures_per_address > 0) {
        cool_off = co_await cool_off_of(ex, address_key(ex, *a));
        why = "address in cool-off after failed logins for many users";
    }
    if (cool_off == 0) co_return true;
    const bool enforce = a->mode == config::rule_mode::enforce;
    worker_.counters().auth_throttled[enforce ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
    // A Basic or NTLM client expects a 401 (and then asks its user); others get 429.
    const auto act =
        challenge.empty() ? config::action::too_many_requests : config::action::unauthorized;
    if (enforce || ex.rule.empty()) {
        ex.rule = a->rule;
        ex.action = policy::to_string(act);
        ex.mode = policy::to_string(a->mode);
    }
    ex.auth_outcome = "throttled";
    if (!enforce) co_return true;
    ex.error = why;
    ex.retry_after = cool_off;
    ex.extra_fields = challenge;
    // An unread body ends the connection; a prefetched one was read whole.
    keep_alive =
        co_await reply(ex, policy::status_of(act), http::has_body(ex.info) && !ex.parser.is_done());
    co_return false;
}

awaitable<bool> client_session::prefetch_body(exchange& ex) {
    if (!relay_buffer_) relay_buffer_ = buffer_pool::block(relay_buffer_size);
    char* const data = relay_buffer_.get() + chunk_head_room;
    phase_ = phase::read_body;
    arm(snap_->timeouts.request_header);
    while (!ex.parser.is_done()) {
        auto& body = ex.parser.get().body();
        body.data = data + ex.prefetched_body;
        body.size = http::max_login_form - ex.prefetched_body;
        auto [ec, n] = co_await inline_io::read_message<false>(stream_, buffer_, ex.parser, turn_);
        if (ec == bhttp::error::need_buffer) ec = {};
        ex.prefetched_body = http::max_login_form - body.size;
        if (ec) {
            ex.error = timed_out_ ? "login form timeout" : "client login form read failed";
            timed_out_ = false;
            co_return false;
        }
    }
    co_return true;
}

policy::rate_limiter::key client_session::address_key(const exchange& ex,
                                                      const runtime::compiled_auth_failures& a) {
    return policy::rate_limiter::make_key(ex.client, a.scope ^ 0x10000000u);
}

awaitable<std::uint32_t> client_session::cool_off_of(exchange& ex,
                                                     const policy::rate_limiter::key& key) {
    if (const auto seconds = co_await worker_.limits().blocked_for(key, snap_->store_timeout))
        co_return *seconds;
    co_return store_unanswered(ex) == policy::limit_outcome::allowed ? 0 : 1;
}

void client_session::note_auth_result(exchange& ex, const bhttp::response_header<>& res) {
    const auto* a = ex.location->auth_failures.get();
    const unsigned status = res.result_int();
    if (a == nullptr || ex.auth_user.empty() || status >= 500) return;
    bool failed = status == 401;
    if (ex.forms_login) {
        const auto it = res.find(bhttp::field::location);
        failed = it != res.end() &&
                 http::is_failed_forms_login(
                     status, std::string_view(it->value().data(), it->value().size()));
    }
    auto& store = worker_.limits();
    if (failed) {
        worker_.counters().auth_failures.fetch_add(1, std::memory_order_relaxed);
        store.record_failure(ex.auth_key, a->max_failures, a->per, a->cool_off);
        if (a->max_failures_per_address > 0)
            store.record_failure(address_key(ex, *a), a->max_failures_per_address, a->per,
                                 a->cool_off);
        if (ex.auth_outcome.empty()) ex.auth_outcome = "failed";
    } else {
        // Only the user's count: one good login from an address does not clear a spray.
        store.reset(ex.auth_key);
        if (ex.auth_outcome.empty()) ex.auth_outcome = "succeeded";
    }
}

policy::limit_outcome client_session::store_unanswered(exchange& ex) {
    const bool deny = snap_->deny_on_store_error;
    worker_.counters().store_unanswered[deny ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
    ex.store_error = true;
    return deny ? policy::limit_outcome::store_error : policy::limit_outcome::allowed;
}

void client_session::abort_connection() {
    aborted_ = true;
    auto& socket = stream_.lowest_layer();
    boost::system::error_code ec;
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
}

awaitable<bool> client_session::reply(exchange& ex, int status, bool close) {
    close = close || !ex.info.keep_alive || worker_.draining();
    out_.clear();
    // Before a location is chosen the global policy applies; after, the location's.
    http::build_error_reply(status, ex.location ? ex.location->headers : snap_->headers,
                            listener_->hsts, close, out_, ex.retry_after, ex.extra_fields);
    ex.status = status;
    phase_ = phase::reply;
    arm(snap_->timeouts.send);
    auto [ec, n] = co_await inline_io::write_all(stream_, asio::buffer(out_), turn_);
    ex.bytes_out += n;
    // A reply that did not go out whole leaves the connection unusable.
    co_return !ec && !close;
}

awaitable<void> client_session::shutdown() {
    phase_ = phase::closing;
    arm(shutdown_timeout);
    co_await stream_.async_shutdown(use_tuple);
    disarm();
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
}

void client_session::finish(exchange& ex) {
    disarm();
    const auto& log = worker_.access_log();
    if (!log.enabled()) return;
    const auto& req = ex.parser.get();
    observe::access_record r;
    r.time = ex.wall;
    r.client =
        ex.client_text.empty() ? std::string_view(peer_text_) : std::string_view(ex.client_text);
    r.peer = socket_peer_text_;
    r.listener = listener_->name;
    if (ex.head_parsed) {
        r.method = req.method_string();
        r.target = req.target();
        if (auto it = req.find(bhttp::field::user_agent); it != req.end())
            r.user_agent = it->value();
    }
    r.status = ex.status;
    r.bytes_in = ex.bytes_in;
    r.bytes_out = ex.bytes_out;
    r.duration_ms = ms_since(ex.start);
    r.upstream = ex.upstream;
    r.upstream_ms = ex.upstream_ms;
    r.tls_version = tls_version_;
    r.tls_cipher = tls_cipher_;
    r.rule = ex.rule;
    r.action = ex.action;
    r.mode = ex.mode;
    r.error = ex.error;
    r.eas = ex.eas;
    r.auth_user = ex.auth_user_logged;
    r.auth_outcome = ex.auth_outcome;
    r.store_error = ex.store_error;
    log.write(r);
}

}  // namespace mailgate::proxy
