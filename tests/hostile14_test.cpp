// tests/hostile14_test.cpp — a hostile reviewer's tests of direct switches
// (scheduler::switch_out, 10f2627): a goroutine that parks, yields or exits
// switches straight to the next one, which finishes the first one's switch
// on its own stack.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

// goro::blocking(ctx, fn) parks holding its call's lock (a leaf of the lock
// order: nothing may be taken under it; goro/detail/lock_rank.hpp), which
// the park's unlock callback releases after the switch. The next goroutine
// must be picked with nothing held: here a goroutine locked to the worker
// (lock_os_thread) waits in its pinned queue, whose lock is the global
// queue's rank. Builds with GORO_ASSERTS (Debug, ASan, TSan) abort on a
// lock taken out of order.
TEST(Hostile14, ParkUnderALeafLockPicksTheNextGoroutineWithNothingHeld) {
    const long rounds = scaled(200);
    goro_test::watchdog dog("blocking(ctx) beside a locked yielder hung", 60s);
    for (int run = 0; run < 5; ++run) {
        std::atomic<long> calls{0}, yields{0};
        goro::run(procs(1), [&] {
            std::atomic<bool> stop{false};
            goro::wait_group wg;
            wg.go([&] {
                goro::lock_os_thread();
                while (!stop.load()) {
                    goro::yield();
                    yields.fetch_add(1);
                }
                goro::unlock_os_thread();
            });
            wg.go([&] {
                auto [ctx, cancel] = goro::with_cancel(goro::background());
                for (long i = 0; i < rounds; ++i) {
                    // Returns once the locked goroutine has run meanwhile:
                    // it then waits in the pinned queue at the next park.
                    const long seen = yields.load();
                    EXPECT_EQ(goro::blocking(ctx,
                                             [i, seen, &yields] {
                                                 while (yields.load() < seen + 2)
                                                     std::this_thread::yield();
                                                 return i;
                                             }),
                              i);
                    calls.fetch_add(1);
                    dog.pet();
                }
                cancel();
                stop.store(true);
            });
            wg.wait();
        });
        EXPECT_EQ(calls.load(), rounds);
        EXPECT_GT(yields.load(), 0);
    }
}
