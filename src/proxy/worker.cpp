#include "proxy/worker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "proxy/client_session.hpp"
#include "proxy/redirect_session.hpp"

namespace mailgate::proxy {
namespace asio = boost::asio;

namespace {
constexpr std::chrono::milliseconds tick_interval{100};
}

worker::worker(unsigned id, runtime::snapshot_holder& snapshots,
               std::shared_ptr<const observe::access_log> access_log,
               std::shared_ptr<policy::rate_limiter> limiter)
    : id_(id),
      snapshots_(snapshots),
      access_log_(std::move(access_log)),
      limiter_(std::move(limiter)) {}

void worker::add_listener(asio::ip::tcp::acceptor acceptor, std::size_t listener_index) {
    acceptors_.emplace_back(std::move(acceptor), listener_index);
}

void worker::run() {
    for (std::size_t i = 0; i < acceptors_.size(); ++i) accept_loop(i);
    schedule_tick();
    io_.run();
}

void worker::accept_loop(std::size_t i) {
    auto& [acceptor, listener_index] = acceptors_[i];
    acceptor.async_accept([this, i](boost::system::error_code ec, asio::ip::tcp::socket socket) {
        if (draining_) return;
        if (!ec) {
            counters_.connections.fetch_add(1, std::memory_order_relaxed);
            const auto listener = acceptors_[i].second;
            if (snapshots_.load()->listeners[listener].http_redirect)
                start_redirect_session(*this, std::move(socket), listener);
            else
                start_session(*this, std::move(socket), listener);
        } else if (ec == asio::error::operation_aborted) {
            return;
        } else {
            // EMFILE and friends: keep accepting; the log says why connections fail.
            spdlog::warn("accept failed on worker {}: {}", id_, ec.message());
        }
        accept_loop(i);
    });
    (void)listener_index;
}

void worker::schedule_tick() {
    tick_.expires_after(tick_interval);
    tick_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        const auto now = clock::now();
        // Collect first: a deadline cancels I/O, and its handlers may end sessions.
        std::vector<client_session*> expired;
        for (auto* s : sessions_)
            if (s->deadline() <= now) expired.push_back(s);
        for (auto* s : expired) s->on_deadline();
        if (pools_)
            for (auto& p : pools_->pools) p.sweep(now);
        schedule_tick();
    });
}

void worker::begin_drain() {
    asio::post(io_, [this] {
        draining_ = true;
        for (auto& [acceptor, index] : acceptors_) {
            boost::system::error_code ec;
            acceptor.close(ec);
        }
        for (auto* s : sessions_)
            if (s->waiting_for_request()) s->close_idle();
    });
}

std::shared_ptr<upstream_pools> worker::pools_for(
    const std::shared_ptr<const runtime::snapshot>& snap) {
    if (pools_ && pools_->snapshot == snap) return pools_;
    auto fresh = std::make_shared<upstream_pools>();
    fresh->snapshot = snap;
    for (const auto& u : snap->upstreams) fresh->pools.emplace_back(u);
    // A request still on an older snapshot gets pools of its own that die with it.
    if (!pools_ || snap == snapshots_.load()) pools_ = fresh;
    return fresh;
}

void worker::count_policy(const std::shared_ptr<const runtime::snapshot>& snap,
                          const policy::verdict& v) {
    auto hits = std::atomic_load(&hits_);
    if (!hits || hits->snapshot != snap) {
        if (snap != snapshots_.load()) return;  // a request on an old snapshot: not counted
        hits = std::make_shared<policy_hits>();
        hits->snapshot = snap;
        hits->counts =
            std::make_unique<std::atomic<std::uint64_t>[]>(2 * snap->policy->rules().size());
        std::atomic_store(&hits_, hits);
    }
    auto bump = [&](const policy::rule_info* r, int which) {
        hits->counts[2 * r->id + which].fetch_add(1, std::memory_order_relaxed);
    };
    for (std::size_t i = 0; i < v.reported_count; ++i) bump(v.reported[i], 1);
    if (v.decided_by) bump(v.decided_by, 0);
}

std::pair<std::uint64_t, std::uint64_t> worker::policy_hits_of(std::uint32_t id) const {
    const auto hits = std::atomic_load(&hits_);
    if (!hits || hits->snapshot != snapshots_.load()) return {0, 0};
    return {hits->counts[2 * id].load(std::memory_order_relaxed),
            hits->counts[2 * id + 1].load(std::memory_order_relaxed)};
}

void worker::enter(client_session* s) {
    sessions_.insert(s);
    active_.fetch_add(1, std::memory_order_relaxed);
}

void worker::leave(client_session* s) {
    sessions_.erase(s);
    active_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace mailgate::proxy
