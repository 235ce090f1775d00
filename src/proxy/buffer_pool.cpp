#include "proxy/buffer_pool.hpp"

#include <array>
#include <new>

namespace mailgate::proxy::buffer_pool {

namespace {

bool pooled(std::size_t n) { return n >= min_pooled && n <= block_size; }

struct cache {
    std::array<void*, max_cached> blocks{};
    std::size_t count = 0;
    ~cache() {
        for (std::size_t i = 0; i < count; ++i) ::operator delete(blocks[i]);
    }
};

thread_local cache local;

}  // namespace

void* take(std::size_t n) {
    if (!pooled(n)) return ::operator new(n);
    if (local.count > 0) return local.blocks[--local.count];
    return ::operator new(block_size);
}

void give(void* p, std::size_t n) noexcept {
    if (p == nullptr) return;
    if (pooled(n) && local.count < max_cached) {
        local.blocks[local.count++] = p;
        return;
    }
    ::operator delete(p);
}

}  // namespace mailgate::proxy::buffer_pool
