#pragma once
// The one interface sessions use for the state of dynamic limits and failed-login counts:
// the in-process rate_limiter, or Redis when `store: redis://...`. A worker owns one; it is
// used on that worker's thread only.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "policy/rate_limiter.hpp"
#include "policy/redis_store.hpp"

namespace mailgate::proxy {

class limit_store;

// A concurrency slot, given back when the exchange ends however it ends (reply, close,
// exception).
struct limiter_slot {
    limit_store* store = nullptr;  // set while a slot is held
    policy::rate_limiter::key key{};
    std::string name;  // Redis names each slot; the local store counts them
    limiter_slot() = default;
    limiter_slot(const limiter_slot&) = delete;
    limiter_slot& operator=(const limiter_slot&) = delete;
    ~limiter_slot();
};

class limit_store {
public:
    limit_store(policy::rate_limiter& local, policy::redis_store* redis,
                boost::asio::io_context& io)
        : local_(local), redis_(redis), io_(io) {}

    // nullopt: Redis did not answer within `timeout` (the caller applies on_store_error).
    // A slot taken is recorded in `slot`.
    boost::asio::awaitable<std::optional<policy::limit_decision>> acquire(
        const policy::rate_limiter::key& key, const policy::limit_settings& s,
        bool count_concurrent, std::chrono::nanoseconds timeout, limiter_slot& slot);
    // Seconds of cool-off left for `key`; nullopt as above.
    boost::asio::awaitable<std::optional<std::uint32_t>> blocked_for(
        const policy::rate_limiter::key& key, std::chrono::nanoseconds timeout);
    // These never wait: Redis gets them in its next pipeline.
    void record_failure(const policy::rate_limiter::key& key, std::uint64_t max,
                        std::chrono::nanoseconds per, std::chrono::nanoseconds cool_off);
    void reset(const policy::rate_limiter::key& key);
    void release(const policy::rate_limiter::key& key, std::string name);

private:
    // Hands `done` to one redis_store call and waits for it on this worker, at most `timeout`.
    template <class Submit>
    boost::asio::awaitable<policy::store_reply> call(std::chrono::nanoseconds timeout,
                                                     Submit submit);

    policy::rate_limiter& local_;
    policy::redis_store* redis_;
    boost::asio::io_context& io_;
};

}  // namespace mailgate::proxy
