#include "proxy/upstream_pool.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>

namespace mailgate::proxy {

namespace {

// Bytes already inside OpenSSL (a record read past the response) are as bad as bytes still
// in the socket: they would become the next client's response.
bool nothing_buffered(upstream_connection& c) {
    return SSL_has_pending(c.stream.native_handle()) == 0 && c.buffer.size() == 0;
}

}  // namespace

bool still_open(upstream_connection& c) {
    if (!nothing_buffered(c)) return false;
    char byte;
    const auto n =
        ::recv(c.stream.lowest_layer().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::unique_ptr<upstream_connection> upstream_pool::take(std::size_t server, clock::time_point now,
                                                         clock::duration look_after) {
    auto& idle = idle_[server];
    while (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        const auto idle_for = now - c->idle_since;
        if (idle_for < upstream_->idle_timeout && (idle_for < look_after || still_open(*c)))
            return c;
    }
    return nullptr;
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> c, clock::time_point now) {
    // The socket itself is looked at when the connection is taken (one syscall a request,
    // not two): what arrives while it is idle is found then.
    if (idle_count() >= upstream_->max_idle || !nothing_buffered(*c)) return;
    c->idle_since = now;
    c->buffer.shrink_to_fit();  // empty (nothing_buffered): keep no read buffer while idle
    idle_[c->server].push_back(std::move(c));
}

void upstream_pool::sweep(clock::time_point now) {
    for (auto& idle : idle_)
        std::erase_if(
            idle, [&](const auto& c) { return now - c->idle_since >= upstream_->idle_timeout; });
}

std::size_t upstream_pool::idle_count() const {
    std::size_t n = 0;
    for (const auto& idle : idle_) n += idle.size();
    return n;
}

std::size_t upstream_pool::pick_server(clock::time_point now) {
    const std::size_t n = down_until_.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t s = (next_ + i) % n;
        if (down_until_[s] <= now) {
            next_ = (s + 1) % n;
            return s;
        }
    }
    // Every server is backing off: try the next one anyway rather than fail outright.
    const std::size_t s = next_;
    next_ = (next_ + 1) % n;
    return s;
}

void upstream_pool::mark_down(std::size_t server, clock::time_point now) {
    down_until_[server] = now + backoff;
}

}  // namespace mailgate::proxy
