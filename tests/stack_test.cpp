// Tests of goroutine stacks: growth on demand, deep recursion, overflow and
// escape death tests, trimming, and the guarded/unguarded split.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>

#include "goro/goro.hpp"
#include "stacks/stack_pool.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::rss_kib;

namespace {

[[gnu::noinline]] long recurse(int depth, volatile char* prev) {
    volatile char frame[256];
    frame[0] = static_cast<char>(depth);
    frame[255] = prev ? prev[0] : 0;
    if (depth == 0) return frame[0] + frame[255];
    return recurse(depth - 1, frame) + 1;
}

}  // namespace

TEST(Stack, DeepRecursionWithinReservation) {
    // ~2000 frames of > 256 bytes: over half a MiB, far past the hot first page.
    goro::run(procs(2), [] {
        std::atomic<long> r{0};
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i) wg.go([&] { r += recurse(1500, nullptr); });
        wg.wait();
        EXPECT_EQ(r.load(), 8 * 1501L);  // depth + the base frame's echo
    });
}

TEST(Stack, ConfigurableSize) {
    goro::options o;
    o.procs = 1;
    o.stack_size = 4 << 20;
    goro::run(o, [] {
        goro::wait_group wg;
        std::atomic<long> r{0};
        // ~3 MiB deep, past the 1 MiB default; a sanitizer's redzones about
        // double a frame (clang's ASan: over 400 bytes), so fewer frames there.
        constexpr int depth = goro_test::sanitized ? 6000 : 10000;
        wg.go([&] { r = recurse(depth, nullptr); });
        wg.wait();
        EXPECT_EQ(r.load(), depth + 1);
    });
    EXPECT_EQ(goro::detail::stack_pool::instance().slot_size(), std::size_t{4} << 20);
}

TEST(Stack, DeepStacksAreTrimmedBeforeReuse) {
    if (goro_test::sanitized) GTEST_SKIP() << "RSS is inflated by shadow memory";
    goro::run(procs(1), [] {
        long before = rss_kib();
        // 64 goroutines each touch ~512 KiB of stack, one after another on one
        // worker: without trimming, the cached stacks would hold ~32 MiB.
        for (int i = 0; i < 64; ++i) {
            goro::wait_group wg;
            wg.go([] { recurse(1800, nullptr); });
            wg.wait();
        }
        long grown = rss_kib() - before;
        EXPECT_LT(grown, 8 * 1024) << "KiB kept after deep goroutines exited";
    });
}

TEST(Stack, ParkedGoroutineCostsAboutOnePage) {
    if (goro_test::sanitized) GTEST_SKIP() << "RSS is inflated by shadow memory";
    // Stacks stay pooled (and resident) for the process's lifetime: measure
    // only in a process that has not run goroutines yet (ctest's case).
    if (goro::detail::stack_pool::instance().total_slots() > 0)
        GTEST_SKIP() << "stacks already pooled in this process (e.g. --gtest_repeat)";
    // Outside run(): see GuardBudgetThenUnguardedSlabs.
    goro::wait_group gate, started;
    goro::run(procs(2), [&] {
        const int n = 20000;
        gate.add(1);
        started.add(n);
        long before = rss_kib();
        for (int i = 0; i < n; ++i)
            goro::go([&] {
                started.done();
                gate.wait();
            });
        started.wait();
        double per = (rss_kib() - before) * 1024.0 / n;
        gate.done();
        EXPECT_LT(per, 4.5 * 1024) << "bytes of RSS per parked goroutine";
        EXPECT_GT(per, 1024) << "implausibly low: is the stack top really touched?";
    });
}

TEST(Stack, FreshSlotsComeWithTheirTopPageCommitted) {
    auto& pool = goro::detail::stack_pool::instance();
    if (pool.total_slots() > 0) GTEST_SKIP() << "stacks already pooled in this process";
    constexpr std::size_t n = 64;
    goro::detail::stack_slot* slots[n];
    std::size_t got = 0;
    while (got < n) got += pool.acquire_batch(slots + got, n - got);
    if (!pool.commits_tops())
        GTEST_SKIP() << "this kernel refuses process_madvise(MADV_POPULATE_WRITE) (before 6.13)";
    const auto resident = [](std::uintptr_t page) {
        unsigned char v = 0;
        EXPECT_EQ(::mincore(reinterpret_cast<void*>(page), 4096, &v), 0);
        return (v & 1) != 0;
    };
    std::size_t tops = 0, below = 0;
    for (auto* s : slots) {
        tops += resident(s->hi - 4096) ? 1 : 0;
        below += resident(s->hi - 2 * 4096) ? 1 : 0;
    }
    pool.release_batch(slots, n);
    EXPECT_EQ(tops, n) << "top pages committed before any goroutine touched them";
    EXPECT_EQ(below, 0u) << "only the top page is committed ahead";
}

TEST(Stack, TrimProbeFindsDeepUseWithoutFaultingInTheProbedPage) {
    auto& pool = goro::detail::stack_pool::instance();
    goro::detail::stack_slot* s = pool.acquire();
    if (s->hi - s->lo < (std::uintptr_t{256} << 10)) {
        pool.release(s);
        GTEST_SKIP() << "slots too small for a region below the hot one";
    }
    const auto resident = [](std::uintptr_t addr) {
        unsigned char v = 0;
        EXPECT_EQ(::mincore(reinterpret_cast<void*>(addr & ~std::uintptr_t{4095}), 4096, &v), 0);
        return (v & 1) != 0;
    };
    const std::uintptr_t keep_from =
        (s->hi - goro::detail::hot_stack_bytes) & ~std::uintptr_t{4095};
    const std::uintptr_t probed = keep_from - sizeof(void*);
    const std::uintptr_t deep = keep_from - (std::uintptr_t{64} << 10);
    ::madvise(reinterpret_cast<void*>(s->lo), keep_from - s->lo, MADV_DONTNEED);
    // Shallow use: not deep, and the probe leaves the page below the hot
    // region unmapped (reading it would have faulted in the zero page).
    EXPECT_FALSE(goro::detail::stack_pool::trim(s, 0, true));
    EXPECT_FALSE(resident(probed));
    // Deep use that never showed in a low-water mark: found by the probe
    // and handed back to the kernel.
    *reinterpret_cast<volatile char*>(deep) = 1;
    *reinterpret_cast<volatile std::uintptr_t*>(probed) = 42;
    EXPECT_TRUE(goro::detail::stack_pool::trim(s, 0, true));
    EXPECT_FALSE(resident(deep));
    EXPECT_FALSE(resident(probed));
    pool.release(s);
}

TEST(Stack, GuardBudgetThenUnguardedSlabs) {
    auto& pool = goro::detail::stack_pool::instance();
    // Outside run(): a goroutine may still be on its way into gate.wait()
    // (after its started.done()) when the main goroutine has returned; run()
    // returns only once every goroutine has ended.
    goro::wait_group gate, started;
    goro::run(procs(2), [&] {
        // More goroutines than the guard budget (max_map_count / 8) at once.
        const int n = goro_test::sanitized ? 3000 : 12000;
        gate.add(1);
        started.add(n);
        for (int i = 0; i < n; ++i)
            goro::go([&] {
                started.done();
                gate.wait();
            });
        started.wait();
        gate.done();
    });
    EXPECT_GT(pool.total_slots(), 0u);
    EXPECT_LE(pool.guarded_slots(), pool.total_slots());
}

using StackDeathTest = ::testing::Test;

TEST(StackDeathTest, OverflowNamesTheGoroutine) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            goro::options o;
            o.procs = 1;
            o.stack_size = 256 << 10;
            goro::run(o, [] {
                goro::wait_group wg;
                wg.go([] { recurse(1 << 20, nullptr); });
                wg.wait();
            });
        },
        "goroutine [0-9]+ overflowed its [0-9]+ KiB stack.*stack overflow|stack "
        "overflow.*goroutine [0-9]+");
}

TEST(StackDeathTest, EscapingExceptionAbortsWithSite) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            goro::run(procs(2), [] {
                goro::wait_group wg;
                wg.go([] { throw std::runtime_error("kaboom"); });
                wg.wait();
            });
        },
        "goroutine [0-9]+ \\(created at .*stack_test.cpp:[0-9]+.*kaboom");
}

TEST(StackDeathTest, UnguardedOverflowIsReportedToo) {
    if (goro_test::sanitized && !goro_test::thread_sanitized)
        GTEST_SKIP() << "ASan reports the runaway's writes into the neighbouring stack first";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            ::setenv("GORO_GUARD_REGIONS", "0", 1);   // the mprotect scheme...
            ::setenv("GORO_GUARDED_STACKS", "0", 1);  // ...with every slot unguarded
            goro::options o;
            o.procs = 1;
            o.stack_size = 256 << 10;
            goro::run(o, [] {
                EXPECT_EQ(goro::detail::stack_pool::instance().guarded_slots(), 0u);
                goro::wait_group wg;
                wg.go([] { recurse(1 << 22, nullptr); });
                wg.wait();
            });
        },
        "stack overflow: goroutine [0-9]+ overflowed");
}
