#include "policy/redis_store.hpp"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <memory>
#include <vector>

namespace mailgate::policy {
namespace {

// The limiter of rate_limiter.cpp, in Lua, in µs of Redis' clock. KEYS[1]: a hash with the
// GCRA time `t` and the block end `b`; KEYS[2]: a sorted set of held concurrency slots
// scored by their lease end. Keys expire when they carry no state any more.
constexpr std::string_view limiter_script = R"lua(
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local op = ARGV[1]
local function secs(us)
  if us <= 0 then return 0 end
  return math.ceil(us / 1000000)
end
local function keep(tat, blocked)
  local last = math.max(tat, blocked)
  if last > now then
    redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 1000)
  end
end
if op == 'acquire' then
  local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
  local block_for, max_concurrent = tonumber(ARGV[4]), tonumber(ARGV[5])
  local state = redis.call('HMGET', KEYS[1], 't', 'b')
  local tat, blocked = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if blocked > now then return {3, secs(blocked - now), 0} end
  local function trip(why, till)
    if block_for > 0 then
      blocked = now + block_for
      redis.call('HSET', KEYS[1], 'b', blocked)
      keep(tat, blocked)
      if blocked > till then till = blocked end
    end
    return {why, math.max(1, secs(till - now)), 0}
  end
  if interval > 0 then
    if tat < now then tat = now end
    if tat - now > tolerance then return trip(1, tat - tolerance) end
    tat = tat + interval
    redis.call('HSET', KEYS[1], 't', tat)
    keep(tat, blocked)
  end
  if ARGV[6] == '1' and max_concurrent > 0 then
    local lease = tonumber(ARGV[8])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= max_concurrent then return trip(2, now + 1000000) end
    redis.call('ZADD', KEYS[2], now + lease, ARGV[7])
    redis.call('PEXPIRE', KEYS[2], math.ceil(lease / 1000) + 1000)
    return {0, 0, 1}
  end
  return {0, 0, 0}
elseif op == 'release' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
elseif op == 'failure' then
  local interval, tolerance, cool_off = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local state = redis.call('HMGET', KEYS[1], 't', 'b')
  local tat, blocked = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if tat < now then tat = now end
  tat = tat + interval
  local tripped = 0
  if tat - now > tolerance then
    blocked = now + cool_off
    tripped = 1
  end
  redis.call('HMSET', KEYS[1], 't', tat, 'b', blocked)
  keep(tat, blocked)
  return tripped
elseif op == 'blocked' then
  return secs((tonumber(redis.call('HGET', KEYS[1], 'b')) or 0) - now)
elseif op == 'reset' then
  redis.call('DEL', KEYS[1])
  return 0
end
return redis.error_reply('unknown op')
)lua";

// Past this many queued requests (Redis far slower than the traffic), new ones fail at once
// rather than grow memory: on_store_error decides them.
constexpr std::size_t max_queued = 65536;

std::int64_t micros(std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

timeval to_timeval(std::chrono::nanoseconds d) {
    const auto us = std::max<std::int64_t>(micros(d), 1000);
    return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

std::string key_name(const rate_limiter::key& k) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "mailgate:";
    for (const auto b : k.address) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    out += ':';
    for (int i = 7; i >= 0; --i) out += hex[(k.scope >> (4 * i)) & 15];
    return out;
}

struct reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

}  // namespace

struct redis_store::connection {
    struct context_deleter {
        void operator()(redisContext* c) const { redisFree(c); }
    };
    std::unique_ptr<redisContext, context_deleter> ctx;
    std::string sha;  // of the loaded script

    // Queues one command for the next pipeline flush.
    bool append(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        return redisAppendCommandArgv(ctx.get(), static_cast<int>(argv.size()), argv.data(),
                                      lens.data()) == REDIS_OK;
    }

    // One command, waited for (connect-time setup only); nullptr when the link failed.
    reply_ptr command(const std::vector<std::string>& args) {
        void* raw = nullptr;
        if (!append(args) || redisGetReply(ctx.get(), &raw) != REDIS_OK) return nullptr;
        return reply_ptr(static_cast<redisReply*>(raw));
    }
};

redis_store::redis_store(config::redis_endpoint endpoint, std::chrono::nanoseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {
    std::array<unsigned char, 8> random{};
    RAND_bytes(random.data(), static_cast<int>(random.size()));
    char text[17];
    for (std::size_t i = 0; i < random.size(); ++i)
        std::snprintf(text + 2 * i, 3, "%02x", random[i]);
    instance_.assign(text, 16);
    thread_ = std::thread([this] { run(); });
}

redis_store::~redis_store() { stop(); }

void redis_store::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    queue_.clear();
}

std::string redis_store::where() const {
    return endpoint_.host + ":" + std::to_string(endpoint_.port) + "/" +
           std::to_string(endpoint_.db);
}

std::string redis_store::next_slot() {
    return instance_ + ":" + std::to_string(slot_counter_.fetch_add(1, std::memory_order_relaxed));
}

void redis_store::submit(item it) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_ && queue_.size() < max_queued) {
            queue_.push_back(std::move(it));
            wake_.notify_one();
            return;
        }
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (it.done) it.done(store_reply{});
}

void redis_store::acquire(const rate_limiter::key& k, const limit_settings& s,
                          bool count_concurrent, std::string slot, done_fn done) {
    item it(op::acquire, k);
    if (s.rate_count > 0) {
        const auto interval =
            std::max<std::int64_t>(micros(s.rate_per) / static_cast<std::int64_t>(s.rate_count), 1);
        it.a = interval;
        it.b = micros(s.rate_per) - interval;
    }
    it.c = micros(s.block_for);
    it.d = s.max_concurrent;
    it.flag = count_concurrent;
    it.slot = std::move(slot);
    it.done = std::move(done);
    submit(std::move(it));
}

void redis_store::release(const rate_limiter::key& k, std::string slot) {
    item it(op::release, k);
    it.slot = std::move(slot);
    submit(std::move(it));
}

void redis_store::record_failure(const rate_limiter::key& k, std::uint64_t max,
                                 std::chrono::nanoseconds per, std::chrono::nanoseconds cool_off) {
    item it(op::failure, k);
    it.a = std::max<std::int64_t>(micros(per) / static_cast<std::int64_t>(max), 1);
    it.b = micros(per) - it.a;
    it.c = micros(cool_off);
    submit(std::move(it));
}

void redis_store::blocked_for(const rate_limiter::key& k, done_fn done) {
    item it(op::blocked, k);
    it.done = std::move(done);
    submit(std::move(it));
}

void redis_store::reset(const rate_limiter::key& k) { submit(item(op::reset, k)); }

void redis_store::note_error(const std::string& what) {
    // At most one line a second: a dead Redis under load fails thousands of requests.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_error_log_ < std::chrono::seconds(1)) return;
    last_error_log_ = now;
    spdlog::error("limit store redis://{}: {}; requests follow on_store_error ({} failed so far)",
                  where(), what, errors());
}

void redis_store::fail(std::deque<item>& batch) {
    for (auto& it : batch) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        if (it.done) it.done(store_reply{});
    }
    batch.clear();
}

bool redis_store::exchange(connection& c, std::deque<item>& batch) {
    static constexpr std::array<const char*, 5> names{"acquire", "release", "failure", "blocked",
                                                      "reset"};
    for (const auto& it : batch) {
        const auto key = key_name(it.key);
        std::vector<std::string> args{"EVALSHA", c.sha,      "2",
                                      key,       key + ":c", names[static_cast<int>(it.kind)]};
        switch (it.kind) {
            case op::acquire:
                for (auto v : {it.a, it.b, it.c, it.d}) args.push_back(std::to_string(v));
                args.push_back(it.flag ? "1" : "0");
                args.push_back(it.slot);
                args.push_back(std::to_string(micros(slot_lease)));
                break;
            case op::release:
                args.push_back(it.slot);
                break;
            case op::failure:
                for (auto v : {it.a, it.b, it.c}) args.push_back(std::to_string(v));
                break;
            case op::blocked:
            case op::reset:
                break;
        }
        if (!c.append(args)) {
            note_error("cannot queue a command");
            return false;
        }
    }
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    while (!batch.empty()) {
        void* raw = nullptr;
        if (redisGetReply(c.ctx.get(), &raw) != REDIS_OK) {
            note_error(c.ctx->errstr[0] ? c.ctx->errstr : "connection lost");
            return false;
        }
        reply_ptr r(static_cast<redisReply*>(raw));
        item it = std::move(batch.front());
        batch.pop_front();
        store_reply out;
        if (r->type == REDIS_REPLY_ERROR) {
            note_error(std::string("script failed: ") + r->str);
            // NOSCRIPT (SCRIPT FLUSH, a failover): reconnecting loads the script again.
            if (std::string_view(r->str).starts_with("NOSCRIPT")) c.sha.clear();
        } else if (it.kind == op::acquire && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            static constexpr std::array<limit_outcome, 4> outcomes{
                limit_outcome::allowed, limit_outcome::rate, limit_outcome::concurrent,
                limit_outcome::blocked};
            const auto o = r->element[0]->integer;
            out.ok = o >= 0 && o < 4;
            if (out.ok) {
                out.decision.outcome = outcomes[static_cast<std::size_t>(o)];
                out.decision.retry_after = static_cast<std::uint32_t>(r->element[1]->integer);
                out.decision.holds_slot = r->element[2]->integer == 1;
            }
        } else if (r->type == REDIS_REPLY_INTEGER) {
            out.ok = true;
            out.seconds = static_cast<std::uint32_t>(r->integer);
        }
        if (!out.ok) errors_.fetch_add(1, std::memory_order_relaxed);
        if (it.done) it.done(out);
    }
    return true;
}

void redis_store::run() {
    connection c;
    auto next_connect = std::chrono::steady_clock::time_point{};
    std::deque<item> batch;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            batch.swap(queue_);
        }
        if (c.ctx && c.sha.empty()) c.ctx.reset();
        if (!c.ctx) {
            // While Redis is away, one connection attempt a second; requests in between
            // fail at once, so that on_store_error decides them without waiting.
            const auto now = std::chrono::steady_clock::now();
            if (now < next_connect) {
                fail(batch);
                continue;
            }
            next_connect = now + std::chrono::seconds(1);
            const auto tv = to_timeval(timeout_);
            c.ctx.reset(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv));
            std::string why;
            if (!c.ctx) {
                why = "cannot allocate a connection";
            } else if (c.ctx->err) {
                why = c.ctx->errstr;
            } else {
                redisSetTimeout(c.ctx.get(), tv);
                redisEnableKeepAlive(c.ctx.get());
                std::vector<std::vector<std::string>> setup;
                if (!endpoint_.password.empty()) setup.push_back({"AUTH", endpoint_.password});
                if (endpoint_.db != 0) setup.push_back({"SELECT", std::to_string(endpoint_.db)});
                setup.push_back({"SCRIPT", "LOAD", std::string(limiter_script)});
                for (const auto& cmd : setup) {
                    auto r = c.command(cmd);
                    if (!r) {
                        why = c.ctx->errstr[0] ? c.ctx->errstr : "no reply";
                        break;
                    }
                    if (r->type == REDIS_REPLY_ERROR) {
                        why = cmd[0] + ": " + r->str;
                        break;
                    }
                    if (cmd[0] == "SCRIPT") c.sha.assign(r->str, r->len);
                }
            }
            if (!why.empty()) {
                c.ctx.reset();
                c.sha.clear();
                connected_.store(false);
                note_error(why);
                fail(batch);
                continue;
            }
            connected_.store(true);
            spdlog::info("limit store redis://{} connected", where());
        }
        if (!exchange(c, batch)) {
            c.ctx.reset();
            c.sha.clear();
            connected_.store(false);
            fail(batch);
        }
    }
}

}  // namespace mailgate::policy
