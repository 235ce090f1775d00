// The per-thread block cache: a block given back is the next one taken; sizes outside the
// pooled range and blocks past the cap go to the heap; flat buffers work over it.
#include "proxy/buffer_pool.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/buffer.hpp>

namespace mailgate::proxy {
namespace {

using namespace buffer_pool;

TEST(BufferPool, AGivenBlockIsTakenAgain) {
    void* a = take(16 * 1024);
    std::memset(a, 1, block_size);  // a whole block, whatever size was asked
    give(a, 16 * 1024);
    void* b = take(17 * 1024);
    EXPECT_EQ(a, b);
    give(b, 17 * 1024);
}

TEST(BufferPool, SmallAndLargeRequestsAreNotPooled) {
    void* small = take(512);
    give(small, 512);
    void* pooled = take(min_pooled);
    EXPECT_NE(pooled, small);  // the small one was freed, not cached
    give(pooled, min_pooled);
    void* large = take(block_size + 1);
    std::memset(large, 2, block_size + 1);
    give(large, block_size + 1);
    EXPECT_EQ(take(min_pooled), pooled);  // the large one did not displace the cached block
    give(pooled, min_pooled);
}

TEST(BufferPool, TheCacheIsCappedAndPerThread) {
    std::thread([] {
        std::vector<void*> blocks;
        for (std::size_t i = 0; i < max_cached + 8; ++i) blocks.push_back(take(block_size));
        for (void* p : blocks) give(p, block_size);
        // The first max_cached given back are cached and come back in reverse order.
        std::set<void*> cached(blocks.begin(), blocks.begin() + max_cached);
        std::vector<void*> again;
        for (std::size_t i = 0; i < max_cached; ++i) {
            again.push_back(take(block_size));
            EXPECT_TRUE(cached.count(again.back()) == 1) << i;
            cached.erase(again.back());
        }
        // Given back, they are freed with the thread's cache when the thread ends.
        for (void* p : again) give(p, block_size);
    }).join();
}

TEST(BufferPool, FlatBufferOverThePool) {
    io_buffer buffer(64 * 1024);
    const std::string_view text = "GET / HTTP/1.1\r\n\r\n";
    auto space = buffer.prepare(16 * 1024);
    std::memcpy(space.data(), text.data(), text.size());
    buffer.commit(text.size());
    EXPECT_EQ(std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()),
              text);
    const void* storage = buffer.data().data();
    buffer.consume(buffer.size());
    buffer.shrink_to_fit();
    EXPECT_EQ(buffer.capacity(), 0u);
    void* next = take(16 * 1024);
    EXPECT_EQ(next, storage);  // the buffer's block went back to the cache
    give(next, 16 * 1024);
}

TEST(BufferPool, BlockOwnsItsMemory) {
    void* first = nullptr;
    {
        block b(16 * 1024 + 27);
        ASSERT_TRUE(b);
        first = b.get();
    }
    block again(16 * 1024 + 27);
    EXPECT_EQ(again.get(), first);
    again.reset();
    EXPECT_FALSE(again);
}

}  // namespace
}  // namespace mailgate::proxy
