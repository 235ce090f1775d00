#pragma once
// Waiting for the shared limit store from a worker's coroutine without blocking the worker:
// the store's thread posts its reply into the worker, and a timer on the worker bounds the
// wait. Whichever comes first decides; a late reply lands in state nobody reads any more.
#include <chrono>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "policy/redis_store.hpp"

namespace mailgate::proxy {

// `submit(done)` hands `done` to one redis_store call. Returns a reply with ok == false
// when the store failed or did not answer within `timeout`.
template <class Submit>
boost::asio::awaitable<policy::store_reply> call_store(boost::asio::io_context& io,
                                                       std::chrono::nanoseconds timeout,
                                                       Submit submit) {
    struct pending {
        explicit pending(boost::asio::io_context& io) : timer(io) {}
        boost::asio::steady_timer timer;
        policy::store_reply reply;
        bool done = false;
    };
    auto p = std::make_shared<pending>(io);
    p->timer.expires_after(timeout);
    submit([p, &io](const policy::store_reply& r) {
        boost::asio::post(io, [p, r] {
            p->reply = r;
            p->done = true;
            p->timer.cancel();
        });
    });
    co_await p->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return p->done ? p->reply : policy::store_reply{};
}

}  // namespace mailgate::proxy
