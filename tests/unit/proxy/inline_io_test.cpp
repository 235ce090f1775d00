// Reads and writes done in place: an operation that can complete now never goes through the
// scheduler, one that would block continues asynchronously from where the attempt stopped,
// and every budget::per_turn-th operation is asynchronous whatever happens.
#include "proxy/inline_io.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace mailgate::proxy {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using inline_io::io_result;

// A stream whose synchronous calls move at most `ready` bytes (would_block at 0), and whose
// asynchronous calls move everything asked, completing through the io_context.
struct fake_stream {
    using executor_type = asio::io_context::executor_type;
    explicit fake_stream(asio::io_context& ctx) : io(ctx) {}
    asio::io_context& io;
    std::string input;      // what reads return, in order
    std::string written;    // what writes took
    std::size_t ready = 0;  // bytes synchronous calls may still move
    int sync_calls = 0;
    int async_calls = 0;

    executor_type get_executor() { return io.get_executor(); }

    std::size_t move_in(asio::mutable_buffer b) {
        const std::size_t n = std::min(b.size(), input.size());
        std::memcpy(b.data(), input.data(), n);
        input.erase(0, n);
        return n;
    }
    template <class Buffers>
    std::size_t move_out(const Buffers& buffers, std::size_t limit) {
        std::size_t n = 0;
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers) && n < limit; ++it) {
            const asio::const_buffer b(*it);
            const std::size_t take = std::min(b.size(), limit - n);
            written.append(static_cast<const char*>(b.data()), take);
            n += take;
        }
        return n;
    }

    template <class Buffers>
    std::size_t read_some(const Buffers& buffers, error_code& ec) {
        ++sync_calls;
        asio::mutable_buffer b = *asio::buffer_sequence_begin(buffers);
        if (ready == 0 || input.empty()) {
            ec = asio::error::would_block;
            return 0;
        }
        ec = {};
        const std::size_t n = move_in(asio::buffer(b.data(), std::min(b.size(), ready)));
        ready -= n;
        return n;
    }
    template <class Buffers>
    std::size_t read_some(const Buffers& buffers) {
        error_code ec;
        const auto n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }
    template <class Buffers>
    std::size_t write_some(const Buffers& buffers, error_code& ec) {
        ++sync_calls;
        if (ready == 0) {
            ec = asio::error::would_block;
            return 0;
        }
        ec = {};
        const std::size_t n = move_out(buffers, ready);
        ready -= n;
        return n;
    }
    template <class Buffers>
    std::size_t write_some(const Buffers& buffers) {
        error_code ec;
        const auto n = write_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        ++async_calls;
        asio::mutable_buffer b = *asio::buffer_sequence_begin(buffers);
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this, b](auto handler) {
                asio::post(io, [this, b, h = std::move(handler)]() mutable {
                    const std::size_t n = move_in(b);
                    std::move(h)(n == 0 ? error_code(asio::error::eof) : error_code(), n);
                });
            },
            token);
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        ++async_calls;
        const std::size_t n = move_out(buffers, SIZE_MAX);
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this, n](auto handler) {
                asio::post(
                    io, [n, h = std::move(handler)]() mutable { std::move(h)(error_code(), n); });
            },
            token);
    }
};

// Runs `body` as a coroutine to its end.
template <class Body>
void run(asio::io_context& io, Body body) {
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await body();
            done = true;
        },
        asio::detached);
    io.run();
    io.restart();
    ASSERT_TRUE(done);
}

TEST(InlineIo, WriteThatFitsIsDoneInPlace) {
    asio::io_context io;
    fake_stream s(io);
    s.ready = 100;
    inline_io::budget turn;
    io_result r;
    run(io, [&]() -> asio::awaitable<void> {
        r = co_await inline_io::write_all(s, asio::buffer(std::string_view("hello")), turn);
    });
    EXPECT_FALSE(std::get<0>(r));
    EXPECT_EQ(std::get<1>(r), 5u);
    EXPECT_EQ(s.written, "hello");
    EXPECT_EQ(s.async_calls, 0);
}

TEST(InlineIo, WriteThatBlocksContinuesAsynchronouslyWhereItStopped) {
    asio::io_context io;
    fake_stream s(io);
    s.ready = 3;
    inline_io::budget turn;
    io_result r;
    run(io, [&]() -> asio::awaitable<void> {
        r = co_await inline_io::write_all(s, asio::buffer(std::string_view("0123456789")), turn);
    });
    EXPECT_FALSE(std::get<0>(r));
    EXPECT_EQ(std::get<1>(r), 10u);
    EXPECT_EQ(s.written, "0123456789");  // each byte once, in order
    EXPECT_EQ(s.async_calls, 1);
}

TEST(InlineIo, ReadInPlaceOrAsynchronously) {
    asio::io_context io;
    fake_stream s(io);
    s.input = "abcdef";
    s.ready = 4;
    inline_io::budget turn;
    char buf[16];
    io_result first, second;
    run(io, [&]() -> asio::awaitable<void> {
        first = co_await inline_io::read_some(s, asio::buffer(buf), turn);
        second = co_await inline_io::read_some(s, asio::buffer(buf + 4, 12), turn);
    });
    EXPECT_EQ(std::get<1>(first), 4u);
    EXPECT_EQ(s.async_calls, 1);  // the second found nothing ready and waited
    EXPECT_EQ(std::get<1>(second), 2u);
    EXPECT_EQ(std::string(buf, 6), "abcdef");
}

TEST(InlineIo, EveryTurnOneOperationGoesThroughTheScheduler) {
    asio::io_context io;
    fake_stream s(io);
    s.ready = 1 << 20;  // a peer that never makes anyone wait
    inline_io::budget turn;
    const int ops = 3 * (inline_io::budget::per_turn + 1);
    run(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < ops; ++i)
            co_await inline_io::write_all(s, asio::buffer(std::string_view("x")), turn);
    });
    EXPECT_EQ(s.written, std::string(ops, 'x'));
    EXPECT_EQ(s.async_calls, 3);
}

TEST(InlineIo, HeaderReadResumesAsynchronouslyWithWhatTheAttemptParsed) {
    asio::io_context io;
    fake_stream s(io);
    s.input = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Long-Field: 0123456789\r\n\r\n";
    s.ready = 20;  // the status line and a bit: the rest only after a wait
    inline_io::budget turn;
    boost::beast::flat_buffer buffer;
    boost::beast::http::response_parser<boost::beast::http::empty_body> parser;
    io_result r;
    run(io, [&]() -> asio::awaitable<void> {
        r = co_await inline_io::read_message<true>(s, buffer, parser, turn);
    });
    EXPECT_FALSE(std::get<0>(r)) << std::get<0>(r).message();
    ASSERT_TRUE(parser.is_header_done());
    EXPECT_EQ(parser.get().result_int(), 200u);
    EXPECT_EQ(parser.get()["X-Long-Field"], "0123456789");
    EXPECT_GE(s.async_calls, 1);
}

}  // namespace
}  // namespace mailgate::proxy
