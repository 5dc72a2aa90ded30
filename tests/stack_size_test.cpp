// Tests of per-goroutine stack sizes (goro::spawn_options::stack_size) and
// of run()'s main goroutine's 8 MiB reservation (options::main_stack_size):
// the reservation is what was asked, committed on demand, reused by the
// next goroutine of that size, deep recursion fits, and bad sizes are
// misuse. The overflow death tests for a custom size are in
// stack_guard_test.cpp.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "goro/goro.hpp"
#include "misuse_util.hpp"
#include "stacks/stack_pool.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

namespace {

[[gnu::noinline]] long recurse(int depth, volatile char* prev) {
    volatile char frame[1024];
    frame[0] = static_cast<char>(depth);
    frame[1023] = prev ? prev[0] : 0;
    if (depth == 0) return 1;
    return recurse(depth - 1, frame) + 1;
}

// The running goroutine's stack slot (found by address), or null.
goro::detail::stack_slot* current_slot() {
    volatile char here = 0;
    const auto addr = reinterpret_cast<std::uintptr_t>(&here);
    goro::detail::stack_slot* found = nullptr;
    goro::detail::stack_pool::instance().for_each_slot([&](goro::detail::stack_slot& s) {
        if (addr >= s.lo && addr < s.hi) found = &s;
    });
    return found;
}

// Resident pages of [lo, lo + bytes).
long resident_pages(std::uintptr_t lo, std::size_t bytes) {
    std::vector<unsigned char> v(bytes / 4096);
    if (::mincore(reinterpret_cast<void*>(lo), bytes, v.data()) != 0) return -1;
    long n = 0;
    for (unsigned char c : v) n += c & 1;
    return n;
}

constexpr std::size_t mib = std::size_t{1} << 20;

}  // namespace

TEST(StackSize, MainGoroutineReservesEightMiBCommittedOnDemand) {
    goro::run(procs(2), [] {
        auto* s = current_slot();
        ASSERT_NE(s, nullptr);
        EXPECT_TRUE(s->sized);
        EXPECT_EQ(s->bytes(), 8 * mib);
        EXPECT_TRUE(s->guarded());
        // Committed on demand: the bottom megabyte has not been touched.
        EXPECT_EQ(resident_pages(s->lo, mib), 0);
        // ~4 MiB deep: far past a default 1 MiB goroutine stack.
        const int depth = goro_test::sanitized ? 1500 : 4000;
        EXPECT_EQ(recurse(depth, nullptr), depth + 1);
    });
}

TEST(StackSize, MainStackSizeOptionAndLargerGoroutineStacks) {
    goro::options o = procs(1);
    o.main_stack_size = 3 * mib + 1;  // rounded up to pages
    goro::run(o, [] { EXPECT_EQ(current_slot()->bytes(), 3 * mib + 4096); });
    goro::options big = procs(1);
    big.stack_size = 16 * mib;  // bigger than 8 MiB: main gets as much
    goro::run(big, [] { EXPECT_EQ(current_slot()->bytes(), 16 * mib); });
}

TEST(StackSize, SpawnOptionsGiveTheGoroutineItsOwnReservation) {
    goro::run(procs(2), [] {
        std::atomic<std::size_t> bytes{0}, default_bytes{0};
        std::atomic<long> depth_ok{0};
        goro::wait_group wg;
        // 32 MiB: ~12 MiB deep (a quarter of that under sanitizers).
        wg.go(goro::spawn_options{.stack_size = 32 * mib}, [&] {
            bytes = current_slot()->bytes();
            const int depth = goro_test::sanitized ? 3000 : 12000;
            depth_ok = recurse(depth, nullptr) == depth + 1;
        });
        wg.go([&] { default_bytes = current_slot()->bytes(); });
        wg.wait();
        EXPECT_EQ(bytes.load(), 32 * mib);
        EXPECT_EQ(default_bytes.load(), goro::detail::stack_pool::instance().slot_size());
        EXPECT_TRUE(depth_ok.load());
        // goro::go and errgroup::go take the options too.
        goro::chan<std::size_t> got = goro::make_chan<std::size_t>(1);
        goro::go(goro::spawn_options{.stack_size = 2 * mib},
                 [got]() mutable { got.send(current_slot()->bytes()); });
        EXPECT_EQ(got.recv(), 2 * mib);
        goro::errgroup g;
        std::atomic<std::size_t> eg_bytes{0};
        g.go(goro::spawn_options{.stack_size = 4 * mib},
             [&] { eg_bytes = current_slot()->bytes(); });
        g.wait();
        EXPECT_EQ(eg_bytes.load(), 4 * mib);
        // The runtime's own size through the options is the ordinary path.
        goro::wait_group wg2;
        wg2.go(goro::spawn_options{.stack_size = goro::detail::stack_pool::instance().slot_size()},
               [&] { default_bytes = current_slot()->sized ? 0 : 1; });
        wg2.wait();
        EXPECT_EQ(default_bytes.load(), 1u);
    });
}

// Sized stacks are reused: many goroutines of one size, a few at a time,
// need only as many mappings as were alive at once.
TEST(StackSize, SizedStacksAreReused) {
    auto& pool = goro::detail::stack_pool::instance();
    goro::run(procs(2), [&] {
        const std::size_t before = pool.sized_slots();
        const int rounds = static_cast<int>(scaled(200, 10));
        for (int r = 0; r < rounds; ++r) {
            goro::wait_group wg;
            for (int i = 0; i < 4; ++i)
                wg.go(goro::spawn_options{.stack_size = 3 * mib}, [] { recurse(100, nullptr); });
            wg.wait();
        }
        // 4 alive at once, plus up to 4 of the previous round: wait() returns
        // at their done(), before they have exited and given their stacks
        // back (TSan saw 5). Without reuse it would be 4 per round.
        EXPECT_LE(pool.sized_slots() - before, 8u);
    });
}

TEST(StackSize, ConcurrentSizedSpawnsAndExits) {
    goro::run(procs(8), [] {
        const int n = static_cast<int>(scaled(2000, 10));
        std::atomic<int> wrong{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i) {
            const std::size_t size = (i % 3 == 0) ? 0 : (i % 3 == 1 ? 2 * mib : 512 << 10);
            wg.go(goro::spawn_options{.stack_size = size}, [size, &wrong] {
                goro::yield();
                auto* s = current_slot();
                const std::size_t want =
                    size ? size : goro::detail::stack_pool::instance().slot_size();
                if (!s || s->bytes() != want) wrong.fetch_add(1);
            });
        }
        wg.wait();
        EXPECT_EQ(wrong.load(), 0);
    });
}

TEST(StackSize, MisuseOutOfRange) {
    goro::run(procs(1), [] {
        goro_test::expect_misuse([] { goro::go(goro::spawn_options{.stack_size = 4096}, [] {}); },
                                 "goro::go");
        goro_test::expect_misuse(
            [] { goro::go(goro::spawn_options{.stack_size = std::size_t{2} << 30}, [] {}); },
            "spawn_options::stack_size");
        goro::wait_group wg;
        goro_test::expect_misuse([&] { wg.go(goro::spawn_options{.stack_size = 1}, [] {}); },
                                 "goro::wait_group::go");
        EXPECT_EQ(wg.count(), 0);  // the add(1) was undone
        goro::errgroup g;
        goro_test::expect_misuse([&] { g.go(goro::spawn_options{.stack_size = 1}, [] {}); },
                                 "goro::errgroup::go");
        g.wait();
    });
    goro::options o;
    o.main_stack_size = 1000;
    goro_test::expect_misuse([&] { goro::run(o, [] {}); }, "options::main_stack_size");
    // From a plain thread too (starts the runtime lazily first).
    goro_test::expect_misuse([] { goro::go(goro::spawn_options{.stack_size = 10}, [] {}); },
                             "goro::go");
}
