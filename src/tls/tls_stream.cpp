#include "tls/tls_stream.hpp"

#include <new>

namespace mailgate::tls {

namespace {

// SSL_get_error needs an empty error queue before each call; ERR_clear_error always wipes
// all 16 slots of the thread's queue (about 4,000 instructions a request), peeking is cheap.
void clear_errors() {
    if (::ERR_peek_error() != 0) ::ERR_clear_error();
}

SSL* new_ssl(boost::asio::ssl::context& ctx, bool release_buffers) {
    SSL* ssl = ::SSL_new(ctx.native_handle());
    if (ssl == nullptr) throw std::bad_alloc();
    // Partial writes: write_some returns after each record, as a stream must. Moving
    // buffers: a write retried after WANT_WRITE may come from a relocated buffer (the same
    // bytes). Release buffers: nothing is held while a connection waits.
    ::SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            (release_buffers ? SSL_MODE_RELEASE_BUFFERS : 0));
    // One read() fetches as much as is there (up to a record buffer), not a 5-byte header
    // and then the rest: half the syscalls per record.
    ::SSL_set_read_ahead(ssl, 1);
    return ssl;
}

}  // namespace

stream::stream(socket_type socket, boost::asio::ssl::context& ctx)
    : socket_(std::move(socket)), ssl_(new_ssl(ctx, true)) {}

// Upstream connections keep their record buffers from one request to the next: a pooled
// connection is busy most of the time, and RELEASE_BUFFERS would free and allocate two 17 KiB
// buffers for every request it carries. A read that has to wait still frees them (read_step),
// so a held long-poll holds none.
stream::stream(const executor_type& ex, boost::asio::ssl::context& ctx)
    : socket_(ex), ssl_(new_ssl(ctx, false)) {}

stream::~stream() { ::SSL_free(ssl_); }

bool stream::attach(boost::system::error_code& ec) {
    if (attached_) return true;
    socket_.non_blocking(true, ec);
    if (ec) return false;
    if (::SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle())) != 1) {
        ec = boost::asio::error::invalid_argument;
        return false;
    }
    attached_ = true;
    return true;
}

stream::step_result stream::outcome(int ret) {
    step_result r;
    const int err = ::SSL_get_error(ssl_, ret);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            r.next = want::read;
            return r;
        case SSL_ERROR_WANT_WRITE:
            r.next = want::write;
            return r;
        case SSL_ERROR_ZERO_RETURN:
            r.ec = boost::asio::error::eof;
            return r;
        case SSL_ERROR_SYSCALL:
            if (errno != 0) {
                r.ec = boost::system::error_code(errno, boost::system::system_category());
                return r;
            }
            r.ec = boost::asio::ssl::error::stream_truncated;
            return r;
        default: {
            const unsigned long e = ::ERR_get_error();
            if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                r.ec = boost::asio::ssl::error::stream_truncated;
            } else if (e != 0) {
                r.ec = boost::system::error_code(static_cast<int>(e),
                                                 boost::asio::error::get_ssl_category());
            } else {
                r.ec = boost::asio::error::connection_aborted;
            }
            return r;
        }
    }
}

stream::step_result stream::handshake_step::operator()(stream& s) {
    step_result r;
    if (!s.attached_) {
        if (!s.attach(r.ec)) return r;
        if (type == boost::asio::ssl::stream_base::server)
            ::SSL_set_accept_state(s.ssl_);
        else
            ::SSL_set_connect_state(s.ssl_);
    }
    clear_errors();
    errno = 0;
    const int ret = ::SSL_do_handshake(s.ssl_);
    if (ret == 1) return r;
    return s.outcome(ret);
}

stream::step_result stream::shutdown_step::operator()(stream& s) {
    step_result r;
    if (!s.attached_) return r;
    clear_errors();
    errno = 0;
    const int ret = ::SSL_shutdown(s.ssl_);
    // 0: our close_notify is out, the peer's has not come; we do not wait for it.
    if (ret >= 0) return r;
    r = s.outcome(ret);
    // A shutdown that wants to read is waiting for the peer: not our business.
    if (r.next == want::read) r.next = want::done;
    return r;
}

template <class Data, class Transfer>
stream::step_result stream::transfer(Data* data, std::size_t size, Transfer ssl_call) {
    step_result r;
    if (size == 0) return r;
    clear_errors();
    errno = 0;
    const int ret = ssl_call(ssl_, data, size, &r.bytes);
    return ret == 1 ? r : outcome(ret);
}

stream::step_result stream::read_step::operator()(stream& s) {
    auto r = s.transfer(buffer.data(), buffer.size(), ::SSL_read_ex);
    // Nothing to read: give the read buffer back before waiting, which may take an hour.
    // SSL_MODE_RELEASE_BUFFERS frees it only after an application data record, not after
    // a read that found only handshake messages (TLS 1.3 session tickets) or nothing.
    // It fails harmlessly when bytes are still buffered.
    if (r.next == want::read) ::SSL_free_buffers(s.ssl_);
    return r;
}

stream::step_result stream::write_step::operator()(stream& s) {
    return s.transfer(buffer.data(), buffer.size(), ::SSL_write_ex);
}

}  // namespace mailgate::tls
