// Tests of after, timer, ticker and after_func: firing, Go's stop/reset
// return values, no stale values after stop/reset (Go 1.23), dropped ticks,
// and timers stopped and reset concurrently.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Timer, AfterDeliversOnceAfterTheDuration) {
    goro::run(procs(2), [] {
        auto t0 = goro::clock::now();
        auto c = goro::after(15ms);
        auto v = c.recv();
        ASSERT_TRUE(v.has_value());
        EXPECT_GE(*v - t0, 15ms);
        EXPECT_GE(goro::clock::now() - t0, 15ms);
        EXPECT_TRUE(c.try_recv().empty());  // once only
    });
}

TEST(Timer, WorksFromPlainThreadWithoutRun) {
    auto t0 = goro::clock::now();
    goro::timer t(10ms);
    EXPECT_TRUE(t.c().recv().has_value());
    EXPECT_GE(goro::clock::now() - t0, 10ms);
}

TEST(Timer, StopBeforeFiringReturnsTrueAndNothingArrives) {
    goro::run(procs(1), [] {
        goro::timer t(20ms);
        EXPECT_TRUE(t.stop());
        EXPECT_FALSE(t.stop());  // already stopped
        goro::sleep_for(40ms);
        EXPECT_TRUE(t.c().try_recv().empty());
    });
}

TEST(Timer, StopAfterDeliveryReturnsFalse) {
    goro::run(procs(1), [] {
        goro::timer t(1ms);
        t.c().recv();
        EXPECT_FALSE(t.stop());
    });
}

TEST(Timer, StopDrainsAnUnreceivedValue) {
    goro::run(procs(1), [] {
        goro::timer t(1ms);
        goro::sleep_for(10ms);  // fired, nobody received
        EXPECT_TRUE(t.stop()) << "Go 1.23: the program never saw the value";
        EXPECT_TRUE(t.c().try_recv().empty()) << "stale value after stop";
    });
}

TEST(Timer, ResetRearmsAndReportsActivity) {
    goro::run(procs(2), [] {
        goro::timer t(1h);
        auto t0 = goro::clock::now();
        EXPECT_TRUE(t.reset(10ms));  // was active
        t.c().recv();
        EXPECT_GE(goro::clock::now() - t0, 10ms);
        EXPECT_FALSE(t.reset(5ms));  // had fired and been received
        EXPECT_TRUE(t.c().recv().has_value());
        // Reset of a fired, unreceived timer: the old value is gone.
        goro::sleep_for(5ms);
        auto before = goro::clock::now();
        t.reset(10ms);
        auto v = t.c().recv();
        EXPECT_GE(*v, before) << "received a stale value from before reset";
    });
}

TEST(Timer, AfterFuncRunsInItsOwnGoroutine) {
    goro::run(procs(2), [] {
        auto done = goro::make_chan<std::uint64_t>(1);
        auto t = goro::after_func(5ms, [done] { done.send(goro::this_goroutine::id()); });
        auto id = done.recv();
        ASSERT_TRUE(id.has_value());
        EXPECT_NE(*id, 0u);
        EXPECT_NE(*id, goro::this_goroutine::id());
        EXPECT_TRUE(t.c().is_nil());
        EXPECT_FALSE(t.stop());
    });
}

TEST(Timer, AfterFuncStoppedNeverRuns) {
    std::atomic<int> ran{0};
    goro::run(procs(2), [&] {
        auto t = goro::after_func(10ms, [&] { ran = 1; });
        EXPECT_TRUE(t.stop());
        goro::sleep_for(30ms);
    });
    EXPECT_EQ(ran.load(), 0);
}

TEST(Timer, AfterFuncWithMoveOnlyCallable) {
    goro::run(procs(1), [] {
        auto done = goro::make_chan<int>(1);
        auto p = std::make_unique<int>(6);
        goro::after_func(1ms, [done, p = std::move(p)] { done.send(*p); });
        EXPECT_EQ(*done.recv(), 6);
    });
}

TEST(Ticker, TicksAndDropsForSlowReaders) {
    goro::run(procs(2), [] {
        // Before the ticker starts: its third tick is due 15 ms after its
        // start, which is after t0 (TSan once saw 14.79 ms from a t0 taken
        // after the start).
        auto t0 = goro::clock::now();
        goro::ticker k(5ms);
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(k.c().recv().has_value());
        EXPECT_GE(goro::clock::now() - t0, 15ms);
        goro::sleep_for(50ms);  // ~10 ticks due; the channel holds at most one
        EXPECT_LE(k.c().size(), 1u);
        k.stop();
        goro::sleep_for(20ms);
        EXPECT_TRUE(k.c().try_recv().empty()) << "tick after stop";
    });
}

TEST(Ticker, ResetChangesThePeriod) {
    goro::run(procs(1), [] {
        goro::ticker k(1h);
        k.reset(2ms);
        auto t0 = goro::clock::now();
        k.c().recv();
        k.c().recv();
        EXPECT_LT(goro::clock::now() - t0, 5s);
        EXPECT_THROW(k.reset(0ms), goro::misuse_error);
        EXPECT_THROW(goro::ticker(0ms), goro::misuse_error);
    });
}

TEST(TimerStress, StopAndResetConcurrently) {
    goro::run(procs(2), [] {
        const int n = static_cast<int>(scaled(300));
        std::atomic<int> fired{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i) {
            auto t = goro::after_func(std::chrono::microseconds(50 + i % 100),
                                      [&] { fired.fetch_add(1); });
            wg.go([t]() mutable {
                goro::yield();
                t.stop();
            });
            wg.go([t]() mutable { t.reset(std::chrono::microseconds(10)); });
        }
        wg.wait();
        goro::sleep_for(20ms);
        EXPECT_LE(fired.load(), 2 * n);
        // Timers driven from many goroutines at once all complete.
        std::vector<goro::timer> timers;
        for (int i = 0; i < n; ++i) timers.emplace_back(std::chrono::microseconds(i % 200));
        goro::wait_group readers;
        std::atomic<int> got{0};
        for (auto& t : timers)
            readers.go([&got, c = t.c()] {
                if (c.recv()) got.fetch_add(1);
            });
        readers.wait();
        EXPECT_EQ(got.load(), n);
    });
}

TEST(TimerStress, HundredThousandSleepersUseTheHeap) {
    goro::run(procs(2), [] {
        const int n = static_cast<int>(scaled(100000, 20));
        goro::wait_group wg;
        std::atomic<int> woke{0};
        auto t0 = goro::clock::now();
        for (int i = 0; i < n; ++i)
            wg.go([&] {
                goro::sleep_for(10ms);
                woke.fetch_add(1, std::memory_order_relaxed);
            });
        wg.wait();
        EXPECT_EQ(woke.load(), n);
        EXPECT_GE(goro::clock::now() - t0, 10ms);
        EXPECT_LT(goro::clock::now() - t0, 30s);  // a hang, not a speed target
    });
}
