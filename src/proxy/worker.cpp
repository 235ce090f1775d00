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
               std::shared_ptr<policy::rate_limiter> limiter,
               std::shared_ptr<policy::redis_store> redis)
    : id_(id),
      snapshots_(snapshots),
      access_log_(std::move(access_log)),
      limiter_(std::move(limiter)),
      redis_(std::move(redis)) {}

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
            if (auto ticket = admit(socket, listener)) {
                if (snapshots_.load()->listeners[listener].http_redirect)
                    start_redirect_session(*this, std::move(socket), listener, std::move(*ticket));
                else
                    start_session(*this, std::move(socket), listener, std::move(*ticket));
            } else {
                // Accepted and closed at once (an RST: nothing was read), and the loop keeps
                // accepting: refusing to accept would leave the backlog to the flood.
                boost::system::error_code ec2;
                socket.set_option(asio::socket_base::linger(true, 0), ec2);
                socket.close(ec2);
            }
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

std::optional<connection_ticket> worker::admit(const asio::ip::tcp::socket& socket,
                                               std::size_t listener_index) {
    // Process-wide: every worker and listener counts against one limit.
    static std::atomic<std::size_t> open_connections{0};
    const auto snap = snapshots_.load();
    const auto now = clock::now();
    const auto refuse = [&](int which, std::string_view what) -> std::optional<connection_ticket> {
        counters_.connections_refused[which].fetch_add(1, std::memory_order_relaxed);
        if (now - last_refusal_log_ >= std::chrono::seconds(1)) {  // at most once a second
            last_refusal_log_ = now;
            spdlog::warn("worker {}: connection refused: {}", id_, what);
        }
        return std::nullopt;
    };
    if (open_connections.load(std::memory_order_relaxed) >= snap->max_connections)
        return refuse(0, "limits.connections reached");
    policy::rate_limiter* limiter = nullptr;
    policy::rate_limiter::key key{};
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    const auto& l = snap->listeners[listener_index];
    if (!ec && snap->max_connections_per_ip > 0 &&
        l.proxy_protocol == config::proxy_protocol_mode::off &&
        !l.trusted_proxies.contains(peer.address())) {
        auto address = peer.address();
        if (address.is_v6() && address.to_v6().is_v4_mapped())
            address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        key = policy::rate_limiter::make_key(address, 0xC0000000u);
        policy::limit_settings s;
        s.max_concurrent = static_cast<unsigned>(
            std::min<std::uint64_t>(snap->max_connections_per_ip, 0xffffffffu));
        const auto d = limiter_->acquire(key, s, now, true);
        if (d.denied()) return refuse(1, "limits.connections_per_ip reached for an address");
        if (d.holds_slot) limiter = limiter_.get();
    }
    open_connections.fetch_add(1, std::memory_order_relaxed);
    return connection_ticket(&open_connections, limiter, key);
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
