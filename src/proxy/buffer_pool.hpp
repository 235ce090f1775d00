#pragma once
// A per-thread cache of the blocks that connections take and give back around every request:
// the client head buffer, the relay buffer and the upstream read buffer (16-17 KiB each).
//
// A connection holds none of them while it waits (an idle keep-alive client, a held Ping), so
// a busy one takes and returns three on every request; from glibc that is three large-bin
// mallocs and frees, and memory handed back to the kernel and faulted in again. Here a block
// comes back from a list of at most `max_cached` per thread (1.25 MiB), in constant time.
#include <cstddef>
#include <memory>

#include <boost/beast/core/flat_buffer.hpp>

namespace mailgate::proxy::buffer_pool {

// Requests from `min_pooled` to `block_size` bytes are served with a whole block; smaller and
// larger ones go to operator new.
inline constexpr std::size_t block_size = 20 * 1024;
inline constexpr std::size_t min_pooled = 8 * 1024;
inline constexpr std::size_t max_cached = 64;

void* take(std::size_t n);
void give(void* p, std::size_t n) noexcept;

// A std allocator over take/give, for beast::basic_flat_buffer.
template <class T>
struct allocator {
    using value_type = T;
    allocator() = default;
    template <class U>
    allocator(const allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(take(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { give(p, n * sizeof(T)); }
    friend bool operator==(const allocator&, const allocator&) { return true; }
};

struct block_deleter {
    std::size_t n = 0;
    void operator()(char* p) const noexcept { give(p, n); }
};

// A fixed-size block owned like a unique_ptr.
class block {
public:
    block() = default;
    explicit block(std::size_t n) : data_(static_cast<char*>(take(n)), block_deleter{n}) {}
    char* get() const { return data_.get(); }
    explicit operator bool() const { return static_cast<bool>(data_); }
    void reset() { data_.reset(); }

private:
    std::unique_ptr<char, block_deleter> data_;
};

}  // namespace mailgate::proxy::buffer_pool

namespace mailgate::proxy {
// The read buffer of client and upstream connections.
using io_buffer = boost::beast::basic_flat_buffer<buffer_pool::allocator<char>>;
}  // namespace mailgate::proxy
