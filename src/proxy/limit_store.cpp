#include "proxy/limit_store.hpp"

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailgate::proxy {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

limiter_slot::~limiter_slot() {
    if (store) store->release(key, std::move(name));
}

// The store's thread posts its reply into this worker, and a timer here bounds the wait.
// Whichever comes first decides; a late reply lands in state nobody reads any more.
template <class Submit>
asio::awaitable<policy::store_reply> limit_store::call(std::chrono::nanoseconds timeout,
                                                       Submit submit) {
    struct pending {
        explicit pending(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        policy::store_reply reply;
        bool done = false;
    };
    auto p = std::make_shared<pending>(io_);
    p->timer.expires_after(timeout);
    submit([p, &io = io_](const policy::store_reply& r) {
        asio::post(io, [p, r] {
            p->reply = r;
            p->done = true;
            p->timer.cancel();
        });
    });
    co_await p->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return p->done ? p->reply : policy::store_reply{};
}

asio::awaitable<std::optional<policy::limit_decision>> limit_store::acquire(
    const policy::rate_limiter::key& key, const policy::limit_settings& s, bool count_concurrent,
    std::chrono::nanoseconds timeout, limiter_slot& slot) {
    const bool may_take_slot = count_concurrent && s.max_concurrent > 0;
    if (redis_ == nullptr) {
        const auto d = local_.acquire(key, s, clock::now(), count_concurrent);
        if (d.holds_slot) {
            slot.store = this;
            slot.key = key;
        }
        co_return d;
    }
    // Only a request that may hold a slot needs a name for it.
    std::string name = may_take_slot ? redis_->next_slot() : std::string();
    const auto r = co_await call(timeout, [&](auto done) {
        redis_->acquire(key, s, count_concurrent, name, std::move(done));
    });
    if (!r.ok) {
        // A slot Redis took after we stopped waiting must not linger for its lease.
        if (may_take_slot) redis_->release(key, std::move(name));
        co_return std::nullopt;
    }
    if (r.decision.holds_slot) {
        slot.store = this;
        slot.key = key;
        slot.name = std::move(name);
    }
    co_return r.decision;
}

asio::awaitable<std::optional<std::uint32_t>> limit_store::blocked_for(
    const policy::rate_limiter::key& key, std::chrono::nanoseconds timeout) {
    if (redis_ == nullptr) co_return local_.blocked_for(key, clock::now());
    const auto r =
        co_await call(timeout, [&](auto done) { redis_->blocked_for(key, std::move(done)); });
    if (!r.ok) co_return std::nullopt;
    co_return r.seconds;
}

void limit_store::record_failure(const policy::rate_limiter::key& key, std::uint64_t max,
                                 std::chrono::nanoseconds per, std::chrono::nanoseconds cool_off) {
    if (redis_)
        redis_->record_failure(key, max, per, cool_off);
    else
        local_.record_failure(key, max, per, cool_off, clock::now());
}

void limit_store::reset(const policy::rate_limiter::key& key) {
    if (redis_)
        redis_->reset(key);
    else
        local_.reset(key);
}

void limit_store::release(const policy::rate_limiter::key& key, std::string name) {
    if (redis_)
        redis_->release(key, std::move(name));
    else
        local_.release(key);
}

}  // namespace mailgate::proxy
