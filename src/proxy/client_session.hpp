#pragma once
// One client connection: TLS handshake, then requests one after another (pipelined ones
// are answered in order), each run through the phases in serve_one(). Owned by its
// coroutine; the worker knows it only to apply deadlines and to drain.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include "tls/tls_stream.hpp"

#include "eas/query_decoder.hpp"
#include "proxy/buffer_pool.hpp"
#include "proxy/exchange.hpp"
#include "proxy/inline_io.hpp"
#include "proxy/upstream_pool.hpp"
#include "proxy/worker.hpp"
#include "runtime/snapshot.hpp"

namespace mailgate::proxy {

class worker;

// Spawns the session coroutine on the worker's io_context.
void start_session(worker& w, boost::asio::ip::tcp::socket socket, std::size_t listener_index,
                   connection_ticket ticket);

class client_session {
public:
    // Holds the connection's share of the connection limits for the session's life.
    void adopt(connection_ticket t) { ticket_ = std::move(t); }
    client_session(worker& w, boost::asio::ip::tcp::socket socket, std::size_t listener_index,
                   std::shared_ptr<const runtime::snapshot> snap);
    client_session(const client_session&) = delete;
    client_session& operator=(const client_session&) = delete;

    boost::asio::awaitable<void> run();

    // For the worker's deadline tick and drain.
    clock::time_point deadline() const { return deadline_; }
    void on_deadline();
    bool waiting_for_request() const { return phase_ == phase::idle; }
    void close_idle();

private:
    enum class phase {
        handshake,
        idle,  // keep-alive: waiting for the first byte of a request
        read_head,
        read_body,
        upstream_connect,
        upstream_write,
        upstream_response,  // waiting for the upstream's response head
        relay_response,
        reply,
        closing,
    };
    enum class relay_status { ok, read_failed, write_failed, too_large, too_slow };
    struct relay_result {
        relay_status status = relay_status::ok;
        std::uint64_t bytes = 0;       // body bytes relayed
        std::uint64_t head_bytes = 0;  // of `head`, written with the first body bytes
    };

    using tls_stream = tls::stream;

    // Phase on_accept: the PROXY protocol header, when the listener expects one.
    boost::asio::awaitable<bool> read_proxy_header();
    boost::asio::awaitable<bool> serve_one(bool first);
    boost::asio::awaitable<http::scan_result> read_head(http::head_scanner& scanner, bool first,
                                                        exchange& ex);
    boost::asio::awaitable<bool> forward(exchange& ex, const runtime::compiled_location& loc);
    boost::asio::awaitable<std::unique_ptr<upstream_connection>> connect_upstream(
        const runtime::compiled_upstream& up, upstream_pool& pool, std::size_t server,
        exchange& ex);
    boost::asio::awaitable<bool> relay_response(exchange& ex, const runtime::compiled_location& loc,
                                                upstream_connection& conn,
                                                http::response_parser& rp, bool& upstream_reusable);
    template <class Parser, class Source, class Sink>
    boost::asio::awaitable<relay_result> relay_body(Parser& parser, Source& source,
                                                    io_buffer& source_buffer,
                                                    clock::duration read_timeout, Sink& sink,
                                                    bool chunked, std::uint64_t limit,
                                                    std::uint64_t min_rate = 0,
                                                    std::string* head = nullptr);
    // mailgate's own reply. Returns whether the connection can carry another request.
    boost::asio::awaitable<bool> reply(exchange& ex, int status, bool close);
    boost::asio::awaitable<void> shutdown();
    // Closes at once with a TCP reset: no HTTP response, no TLS close_notify, and nothing
    // after it on this connection is processed (IIS's AbortRequest).
    void abort_connection();
    // Redis did not decide in time: counts it, marks the log, and answers by on_store_error
    // (allowed, or store_error to deny).
    policy::limit_outcome store_unanswered(exchange& ex);
    boost::asio::ip::address resolve_client(const boost::beast::http::fields& fields) const;
    // Phase decode_eas (ActiveSync locations): R1 methods, then the MS-ASHTTP query. Returns
    // the status to answer (405/400) or 0 when the request goes on with ex.eas set.
    int decode_activesync(exchange& ex);
    // Phase dynamic_limits (dynamic_ip_restrictions): false when the request must not go on.
    boost::asio::awaitable<bool> apply_dynamic_limits(exchange& ex, bool& keep_alive);
    // One limit of either kind; `counts` are the worker's decision counters for that kind.
    boost::asio::awaitable<bool> apply_limit(exchange& ex, const runtime::compiled_dynamic_ip& d,
                                             const policy::rate_limiter::key& key,
                                             limiter_slot& slot,
                                             std::atomic<std::uint64_t> (&counts)[3][2],
                                             bool& keep_alive);
    // Phase auth_throttle (auth_failure_limits): a user in cool-off is answered here.
    boost::asio::awaitable<bool> apply_auth_throttle(exchange& ex, bool& keep_alive);
    // After the upstream's answer: a 401 to credentials is a failure, anything else a success.
    void note_auth_result(exchange& ex, const boost::beast::http::response_header<>& res);
    // Reads a small request body whole into the relay buffer (ex.prefetched_body bytes).
    boost::asio::awaitable<bool> prefetch_body(exchange& ex);
    // Seconds of cool-off left for `key` in the store (local or Redis); by on_store_error when
    // Redis does not answer.
    boost::asio::awaitable<std::uint32_t> cool_off_of(exchange& ex,
                                                      const policy::rate_limiter::key& key);
    static policy::rate_limiter::key address_key(const exchange& ex,
                                                 const runtime::compiled_auth_failures& a);
    // Phase request_policy: returns false when the request must not go upstream.
    boost::asio::awaitable<bool> apply_policy(exchange& ex, bool& keep_alive);
    void finish(exchange& ex);

    void arm(clock::duration d) { deadline_ = clock::now() + d; }
    void arm_at(clock::time_point t) { deadline_ = t; }
    void disarm() { deadline_ = clock::time_point::max(); }

    worker& worker_;
    std::shared_ptr<const runtime::snapshot> snap_;  // the current request's snapshot
    const runtime::compiled_listener* listener_;     // from the connection's first snapshot
    std::shared_ptr<const runtime::snapshot> listener_snap_;
    tls_stream stream_;
    io_buffer buffer_;
    boost::asio::ip::address peer_;  // the socket peer, or the PROXY protocol source
    std::string peer_text_;
    std::string socket_peer_text_;  // the TCP peer (a load balancer, with PROXY protocol)
    std::string out_;               // heads being written
    buffer_pool::block relay_buffer_;
    connection_ticket ticket_;  // this connection's share of the connection limits
    eas::eas_facts eas_;
    inline_io::budget turn_;  // reads and writes done in place in a row (fairness)
    // R18: an upstream connection that NTLM/Negotiate bound to this client connection. It
    // never goes back to a pool and closes with this session; `pinned_snap_` keeps its TLS
    // context alive across reloads, `pinned_upstream_` indexes that snapshot's upstreams.
    std::unique_ptr<upstream_connection> pinned_;
    std::shared_ptr<const runtime::snapshot> pinned_snap_;
    std::size_t pinned_upstream_ =
        0;  // refilled per ActiveSync request, so decoding allocates nothing
    upstream_connection* upstream_ = nullptr;  // while one is in use, for deadline cancel
    clock::duration idle_timeout_;
    clock::time_point deadline_ = clock::time_point::max();
    phase phase_ = phase::handshake;
    bool timed_out_ = false;
    bool closed_by_drain_ = false;
    bool aborted_ = false;
    const char* tls_version_ = "";
    const char* tls_cipher_ = "";
};

}  // namespace mailgate::proxy
