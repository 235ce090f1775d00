#pragma once
// Per-worker keep-alive pool of TLS connections to one upstream, and the round-robin
// choice among its servers with a short back-off for a server that refused us.
// Owned by one worker thread: no locks.
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/buffer_pool.hpp"
#include "runtime/snapshot.hpp"
#include "tls/tls_stream.hpp"

namespace mailgate::proxy {

using clock = std::chrono::steady_clock;

struct upstream_connection {
    upstream_connection(const tls::stream::executor_type& ex, boost::asio::ssl::context& ctx,
                        std::size_t server_index)
        : stream(ex, ctx), buffer(max_buffer), server(server_index) {}

    // Bounds what an upstream can make us hold (trailers and chunk extensions are not
    // limited by Beast 1.81), and keeps any field below basic_fields' 64 KiB limit.
    static constexpr std::size_t max_buffer = 64 * 1024;

    tls::stream stream;
    io_buffer buffer;  // bytes read past a response; empty when pooled
    std::size_t server;
    clock::time_point idle_since{};
    std::uint32_t requests = 0;
};

// An idle upstream connection must have nothing to read: EOF means the server closed
// it, and bytes (a TLS alert, a stray response) mean it cannot carry a new request.
bool still_open(upstream_connection& c);

class upstream_pool {
public:
    explicit upstream_pool(const runtime::compiled_upstream& u)
        : upstream_(&u), idle_(u.servers.size()), down_until_(u.servers.size()) {}

    // The most recently used idle connection to `server` still open; nullptr when none.
    // The socket is looked at (a system call) when the connection has been idle for at least
    // `look_after`: a request that is retried on a fresh connection when the one it took
    // proves closed skips the look on a connection it used a moment ago.
    std::unique_ptr<upstream_connection> take(std::size_t server, clock::time_point now,
                                              clock::duration look_after = {});
    // Keeps `c` for reuse unless the pool is full.
    void give_back(std::unique_ptr<upstream_connection> c, clock::time_point now);
    // Closes connections idle for longer than the upstream's idle_timeout.
    void sweep(clock::time_point now);

    // Round robin over the servers per request (as nginx and HAProxy balance), skipping
    // those in back-off while any is not.
    std::size_t pick_server(clock::time_point now);
    void mark_down(std::size_t server, clock::time_point now);

    std::size_t idle_count() const;

private:
    static constexpr std::chrono::seconds backoff{5};
    const runtime::compiled_upstream* upstream_;
    // Per server; back = most recently used.
    std::vector<std::vector<std::unique_ptr<upstream_connection>>> idle_;
    std::vector<clock::time_point> down_until_;
    std::size_t next_ = 0;
};

}  // namespace mailgate::proxy
