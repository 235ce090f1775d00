#pragma once
// Reads and writes that are done in place when they can be, as nginx and HAProxy do: only
// one that would block becomes an asynchronous operation.
//
// An Asio operation costs a handler allocation, a post and a trip through the scheduler even
// when its result is already there, which on a busy proxy is most of the time: the request
// is in the socket, the response follows a few microseconds after the request went out, and
// the socket buffer takes the answer. Done in place (with the changes that came with it), a
// keep-alive request went from 83,700 to 73,500 instructions (bench/callgrind.sh).
//
// Fairness: a connection whose peer always has the next bytes ready would never give the
// thread back; every `budget::per_turn`-th operation goes through the scheduler.
#include <cstddef>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

namespace mailgate::proxy::inline_io {

// How many operations in a row one connection may complete in place.
class budget {
public:
    static constexpr int per_turn = 16;
    // True when the next operation may be done in place.
    bool take() {
        if (left_ == 0) {
            left_ = per_turn;
            return false;
        }
        --left_;
        return true;
    }

private:
    int left_ = per_turn;
};

using io_result = std::tuple<boost::system::error_code, std::size_t>;

// asio::async_write of one buffer.
template <class Stream>
boost::asio::awaitable<io_result> write_all(Stream& stream, boost::asio::const_buffer buffer,
                                            budget& turn) {
    std::size_t done = 0;
    if (turn.take()) {
        boost::system::error_code ec;
        done = boost::asio::write(stream, buffer, ec);
        if (ec != boost::asio::error::would_block) co_return io_result{ec, done};
        buffer += done;
    }
    auto [ec, n] = co_await boost::asio::async_write(
        stream, buffer, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return io_result{ec, done + n};
}

// stream.async_read_some into one buffer.
template <class Stream>
boost::asio::awaitable<io_result> read_some(Stream& stream, boost::asio::mutable_buffer buffer,
                                            budget& turn) {
    if (turn.take()) {
        boost::system::error_code ec;
        const std::size_t n = stream.read_some(buffer, ec);
        if (ec != boost::asio::error::would_block) co_return io_result{ec, n};
    }
    co_return co_await stream.async_read_some(buffer,
                                              boost::asio::as_tuple(boost::asio::use_awaitable));
}

// beast::http::async_read_some (the body, in pieces) or async_read_header (`header_only`).
template <bool header_only, class Stream, class Buffer, class Parser>
boost::asio::awaitable<io_result> read_message(Stream& stream, Buffer& buffer, Parser& parser,
                                               budget& turn) {
    namespace http = boost::beast::http;
    constexpr auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
    std::size_t done = 0;
    if (turn.take()) {
        boost::system::error_code ec;
        if constexpr (header_only)
            done = http::read_header(stream, buffer, parser, ec);
        else
            done = http::read_some(stream, buffer, parser, ec);
        if (ec != boost::asio::error::would_block) co_return io_result{ec, done};
    }
    // The parser and the buffer keep what the attempt read: the operation goes on from there.
    io_result r;
    if constexpr (header_only)
        r = co_await http::async_read_header(stream, buffer, parser, token);
    else
        r = co_await http::async_read_some(stream, buffer, parser, token);
    std::get<1>(r) += done;
    co_return r;
}

}  // namespace mailgate::proxy::inline_io
