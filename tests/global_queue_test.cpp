// The global run queue (scheduler/global_queue.hpp): a FIFO of goroutine
// pointers in 4 KiB blocks. Order across block boundaries, batches that
// straddle them, reuse after emptying, and concurrent pushers and poppers
// that must see every goroutine exactly once. The queue never dereferences
// what it holds, so the goroutines here are just distinct addresses.
#define GORO_ASSERTS 1  // check the queue's invariants in this test
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "scheduler/global_queue.hpp"
#include "test_util.hpp"

using goro::detail::global_queue;
using goro::detail::goroutine;
using goro_test::scaled;

namespace {

goroutine* fake(std::uintptr_t i) {
    return reinterpret_cast<goroutine*>((i + 1) * 64);
}
std::uintptr_t index_of(goroutine* g) {
    return reinterpret_cast<std::uintptr_t>(g) / 64 - 1;
}

}  // namespace

TEST(GlobalQueue, FifoAcrossBlocksAndBatches) {
    global_queue q;
    EXPECT_TRUE(q.empty());
    goroutine* out[32];
    EXPECT_EQ(q.pop_batch(out, 32), 0u);
    const std::uintptr_t n = 5 * global_queue::block_slots + 7;
    std::uintptr_t pushed = 0, popped = 0;
    // Pushes singly and in batches of up to 128, pops in batches of 1..32,
    // interleaved so that the queue fills past several blocks and drains.
    for (int round = 0; round < 3; ++round) {
        while (pushed < n * (round + 1)) {
            std::size_t k = 1 + pushed % 128;
            goroutine* batch[128];
            for (std::size_t i = 0; i < k; ++i) batch[i] = fake(pushed + i);
            if (k == 1)
                q.push(batch[0]);
            else
                q.push_batch(batch, k);
            pushed += k;
            if (pushed % 3 == 0) {  // a little popping while it grows
                std::size_t got = q.pop_batch(out, 1 + pushed % 32);
                for (std::size_t i = 0; i < got; ++i) ASSERT_EQ(index_of(out[i]), popped++);
            }
        }
        while (!q.empty()) {
            std::size_t got = q.pop_batch(out, 1 + popped % 32);
            ASSERT_GT(got, 0u);
            for (std::size_t i = 0; i < got; ++i) ASSERT_EQ(index_of(out[i]), popped++);
        }
        EXPECT_EQ(popped, pushed);
        EXPECT_EQ(q.pop_batch(out, 32), 0u);
    }
}

TEST(GlobalQueue, ExactlyOnceUnderConcurrentPushAndPop) {
    global_queue q;
    const std::uintptr_t per_pusher = scaled(300000, 10);
    constexpr int pushers = 2, poppers = 2;
    const std::uintptr_t total = per_pusher * pushers;
    std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[total]);
    for (std::uintptr_t i = 0; i < total; ++i) seen[i] = 0;
    std::atomic<std::uintptr_t> taken{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < pushers; ++p)
        threads.emplace_back([&, p] {
            // Each pusher's own goroutines must come out in its order.
            std::uintptr_t base = p * per_pusher;
            for (std::uintptr_t i = 0; i < per_pusher;) {
                std::size_t k = std::min<std::uintptr_t>(1 + i % 128, per_pusher - i);
                goroutine* batch[128];
                for (std::size_t j = 0; j < k; ++j) batch[j] = fake(base + i + j);
                q.push_batch(batch, k);
                i += k;
            }
        });
    std::atomic<bool> order_ok{true};
    for (int c = 0; c < poppers; ++c)
        threads.emplace_back([&] {
            std::uintptr_t last[pushers];
            for (auto& l : last) l = ~std::uintptr_t{0};
            goroutine* out[32];
            while (taken.load(std::memory_order_relaxed) < total) {
                std::size_t got = q.pop_batch(out, 32);
                for (std::size_t i = 0; i < got; ++i) {
                    std::uintptr_t x = index_of(out[i]);
                    if (x >= total) {
                        order_ok = false;
                        continue;
                    }
                    seen[x].fetch_add(1, std::memory_order_relaxed);
                    std::size_t from = x / per_pusher;
                    if (last[from] != ~std::uintptr_t{0} && x <= last[from]) order_ok = false;
                    last[from] = x;
                }
                taken.fetch_add(got, std::memory_order_relaxed);
                if (got == 0) std::this_thread::yield();
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_TRUE(order_ok.load()) << "a popper saw one pusher's goroutines out of order";
    EXPECT_TRUE(q.empty());
    for (std::uintptr_t i = 0; i < total; ++i) ASSERT_EQ(seen[i].load(), 1) << "goroutine " << i;
}
