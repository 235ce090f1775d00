#pragma once
// A TLS stream over a TCP socket in which OpenSSL reads and writes the socket itself, as in
// nginx and HAProxy: no BIO pair, no copy of each record into a staging buffer, and no
// buffer at all while the connection is idle.
//
// asio::ssl::stream keeps four 17 KiB buffers per stream from construction to destruction
// (its engine's BIO pair and its own input/output staging), about 68 KiB that a held
// ActiveSync Ping or an idle keep-alive connection never uses. Here OpenSSL owns the only
// record buffers, and SSL_MODE_RELEASE_BUFFERS frees them whenever they are empty.
//
// The interface is the part of asio::ssl::stream that mailgate uses: handshake, read_some,
// write_some (an AsyncReadStream and AsyncWriteStream for Asio and Beast), shutdown, the
// socket and the SSL*. One read and one write may be outstanding at once, as with any stream.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/system/system_error.hpp>

namespace mailgate::tls {

class stream {
public:
    using socket_type = boost::asio::ip::tcp::socket;
    using executor_type = socket_type::executor_type;
    using lowest_layer_type = socket_type;
    using next_layer_type = socket_type;
    using handshake_type = boost::asio::ssl::stream_base::handshake_type;

    // A server side over an accepted socket.
    stream(socket_type socket, boost::asio::ssl::context& ctx);
    // A client side whose socket is connected later (lowest_layer()); it keeps its record
    // buffers between requests (see the .cpp).
    stream(const executor_type& ex, boost::asio::ssl::context& ctx);
    ~stream();
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    executor_type get_executor() { return socket_.get_executor(); }
    socket_type& lowest_layer() { return socket_; }
    socket_type& next_layer() { return socket_; }
    SSL* native_handle() { return ssl_; }

    template <class Token>
    auto async_handshake(handshake_type type, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code)>(
            op<handshake_step>{this, handshake_step{type}}, token, socket_);
    }

    // Sends close_notify and completes; it does not wait for the peer's (nginx does not
    // either): the socket is closed next anyway.
    template <class Token>
    auto async_shutdown(Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code)>(
            op<shutdown_step>{this, shutdown_step{}}, token, socket_);
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            op<read_step>{this, read_step{first_buffer(buffers)}}, token, socket_);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            op<write_step>{this, write_step{first_buffer(buffers)}}, token, socket_);
    }

    // Attempts that never wait (a SyncReadStream and SyncWriteStream for Asio and Beast):
    // `ec` is would_block when nothing could be done now. An asynchronous operation of the
    // same direction started right after such an attempt waits at once, without repeating
    // the attempt (and its read() or write() that would fail again). See proxy/inline_io.hpp.
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
        return attempt(read_step{first_buffer(buffers)}(*this), read_blocked_, ec);
    }
    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
        return attempt(write_step{first_buffer(buffers)}(*this), write_blocked_, ec);
    }
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers) {
        boost::system::error_code ec;
        const auto n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }
    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers) {
        boost::system::error_code ec;
        const auto n = write_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

private:
    // What one OpenSSL call asks for next.
    enum class want { done, read, write };

    struct step_result {
        want next = want::done;
        boost::system::error_code ec;
        std::size_t bytes = 0;
    };

    // The outcome of an SSL_* call that returned `ret`, in Asio's terms.
    step_result outcome(int ret);
    // One SSL_read_ex or SSL_write_ex of `size` bytes.
    template <class Data, class Transfer>
    step_result transfer(Data* data, std::size_t size, Transfer ssl_call);
    // Sets the socket non-blocking and attaches it to the SSL object (once).
    bool attach(boost::system::error_code& ec);
    // The result of a synchronous attempt; what it waits for is kept in `blocked`.
    std::size_t attempt(const step_result& r, want& blocked, boost::system::error_code& ec) {
        blocked = r.next;
        ec = r.next == want::done ? r.ec : boost::asio::error::would_block;
        return r.bytes;
    }

    struct handshake_step {
        handshake_type type;
        step_result operator()(stream& s);
    };
    struct shutdown_step {
        step_result operator()(stream& s);
    };
    struct read_step {
        boost::asio::mutable_buffer buffer;
        step_result operator()(stream& s);
    };
    struct write_step {
        boost::asio::const_buffer buffer;
        step_result operator()(stream& s);
    };

    // Runs `step` until it completes, waiting on the socket for what OpenSSL asks. The
    // first attempt runs inside the initiating call; a result found then is posted, so that
    // a handler never runs inside the function that started it.
    template <class Step>
    struct op {
        stream* s;
        Step step;
        step_result result{};
        enum { starting, waiting, finishing } state = starting;

        template <class Self>
        void operator()(Self& self, boost::system::error_code wait_ec = {}) {
            if (state == finishing) return finish(self);
            if (state == waiting && wait_ec) {
                result = {want::done, wait_ec, 0};
                return finish(self);
            }
            if (state == starting && blocked_on() != want::done) {
                // A synchronous attempt just found nothing to do: wait for what it asked.
                state = waiting;
                return s->socket_.async_wait(std::exchange(blocked_on(), want::done) == want::read
                                                 ? socket_type::wait_read
                                                 : socket_type::wait_write,
                                             std::move(self));
            }
            result = step(*s);
            if (result.next == want::done) {
                if (state == starting) {
                    state = finishing;
                    return boost::asio::post(s->socket_.get_executor(), std::move(self));
                }
                return finish(self);
            }
            state = waiting;
            s->socket_.async_wait(
                result.next == want::read ? socket_type::wait_read : socket_type::wait_write,
                std::move(self));
        }

        // What the last synchronous attempt in this op's direction waits for.
        want& blocked_on() {
            if constexpr (std::is_same_v<Step, read_step>)
                return s->read_blocked_;
            else if constexpr (std::is_same_v<Step, write_step>)
                return s->write_blocked_;
            else
                return s->no_attempt_;
        }

        template <class Self>
        void finish(Self& self) {
            if constexpr (std::is_same_v<Step, read_step> || std::is_same_v<Step, write_step>)
                self.complete(result.ec, result.bytes);
            else
                self.complete(result.ec);
        }
    };

    template <class Buffers>
    static auto first_buffer(const Buffers& buffers) {
        auto it = boost::asio::buffer_sequence_begin(buffers);
        const auto end = boost::asio::buffer_sequence_end(buffers);
        using buffer_type = std::decay_t<decltype(*it)>;
        for (; it != end; ++it) {
            buffer_type b(*it);
            if (b.size() != 0) return b;
        }
        return buffer_type{};
    }

    socket_type socket_;
    SSL* ssl_ = nullptr;
    bool attached_ = false;
    want read_blocked_ = want::done;
    want write_blocked_ = want::done;
    want no_attempt_ = want::done;  // handshakes and shutdowns have no synchronous form
};

}  // namespace mailgate::tls
