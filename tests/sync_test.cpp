// Tests of goro::once, goro::cond and goro::semaphore.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Once, RunsExactlyOnceAndOthersWait) {
    goro::run(procs(2), [] {
        goro::once o;
        std::atomic<int> runs{0};
        std::atomic<int> saw_done{0};
        goro::wait_group wg;
        for (int i = 0; i < 100; ++i)
            wg.go([&] {
                o.call([&] {
                    goro::sleep_for(5ms);  // others must wait, not skip
                    runs.fetch_add(1);
                });
                if (runs.load() == 1) saw_done.fetch_add(1);
            });
        wg.wait();
        EXPECT_EQ(runs.load(), 1);
        EXPECT_EQ(saw_done.load(), 100);
        EXPECT_TRUE(o.done());
    });
}

TEST(Once, ThrowingCallLeavesItNotDone) {
    goro::once o;
    EXPECT_THROW(o.call([] { throw std::runtime_error("x"); }), std::runtime_error);
    EXPECT_FALSE(o.done());
    int n = 0;
    o.call([&] { ++n; });
    o.call([&] { ++n; });
    EXPECT_EQ(n, 1);
}

TEST(Cond, SignalWakesOneBroadcastWakesAll) {
    goro::run(procs(2), [] {
        goro::mutex m;
        goro::cond c(m);
        int tokens = 0;
        std::atomic<int> woke{0};
        goro::wait_group wg;
        for (int i = 0; i < 10; ++i)
            wg.go([&] {
                std::unique_lock lk(m);
                c.wait(lk, [&] { return tokens > 0; });
                --tokens;
                woke.fetch_add(1);
            });
        goro::sleep_for(5ms);
        EXPECT_EQ(woke.load(), 0);
        {
            std::lock_guard lk(m);
            tokens = 1;
        }
        c.signal();
        goro::sleep_for(5ms);
        EXPECT_EQ(woke.load(), 1);
        {
            std::lock_guard lk(m);
            tokens = 9;
        }
        c.broadcast();
        wg.wait();
        EXPECT_EQ(woke.load(), 10);
    });
}

TEST(Cond, NoLostSignalBetweenUnlockAndPark) {
    goro::run(procs(2), [] {
        const int rounds = static_cast<int>(scaled(2000));
        goro::mutex m;
        goro::cond c(m);
        int turn = 0;
        goro::wait_group wg;
        wg.go([&] {
            for (int i = 0; i < rounds; ++i) {
                std::unique_lock lk(m);
                c.wait(lk, [&] { return turn % 2 == 1; });
                ++turn;
                c.signal();
            }
        });
        for (int i = 0; i < rounds; ++i) {
            std::unique_lock lk(m);
            c.wait(lk, [&] { return turn % 2 == 0; });
            ++turn;
            c.signal();
        }
        wg.wait();
        EXPECT_EQ(turn, 2 * rounds);
    });
}

TEST(Cond, WaitWithoutTheLockThrows) {
    goro::mutex m, other;
    goro::cond c(m);
    std::unique_lock lk(other);
    EXPECT_THROW(c.wait(lk), goro::misuse_error);
}

TEST(Semaphore, WeightedAcquireRelease) {
    goro::semaphore s(5);
    EXPECT_TRUE(s.try_acquire(3));
    EXPECT_FALSE(s.try_acquire(3));
    EXPECT_TRUE(s.try_acquire(2));
    s.release(5);
    EXPECT_THROW(s.release(1), goro::negative_counter_error);
    EXPECT_THROW(s.acquire(6), goro::misuse_error);
}

TEST(Semaphore, FifoLargeRequestNotStarved) {
    goro::run(procs(1), [] {
        goro::semaphore s(4);
        s.acquire(4);
        std::vector<int> order;
        goro::wait_group wg;
        wg.go([&] {
            s.acquire(4);  // big request first in line
            order.push_back(4);
            s.release(4);
        });
        goro::sleep_for(2ms);
        wg.go([&] {
            s.acquire(1);  // a small one behind it must not overtake
            order.push_back(1);
            s.release(1);
        });
        goro::sleep_for(2ms);
        s.release(1);  // 1 free: fits the small one, but the big one is first
        goro::sleep_for(2ms);
        EXPECT_TRUE(order.empty());
        s.release(3);
        wg.wait();
        EXPECT_EQ(order, (std::vector<int>{4, 1}));
    });
}

TEST(Semaphore, ContextAcquireGivesUpWithoutLosingPermits) {
    goro::run(procs(2), [] {
        goro::semaphore s(2);
        s.acquire(2);
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 10ms);
        auto ec = s.acquire(ctx, 1);
        EXPECT_EQ(ec, goro::errc::deadline_exceeded);
        s.release(2);
        EXPECT_TRUE(s.try_acquire(2)) << "a permit was lost by the cancelled acquire";
        s.release(2);
        EXPECT_FALSE(s.acquire(goro::background(), 2));
        s.release(2);
        cancel();
    });
}

TEST(SemaphoreStress, CancellationRacingRelease) {
    goro::run(procs(2), [] {
        goro::semaphore s(3);
        const int rounds = static_cast<int>(scaled(300));
        std::atomic<long> held{0};
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i)
            wg.go([&, i] {
                for (int r = 0; r < rounds; ++r) {
                    auto [ctx, cancel] = goro::with_cancel(goro::background());
                    if (r % 3 == i % 3) cancel();
                    if (!s.acquire(ctx, 1 + (r + i) % 2)) {
                        long now = held.fetch_add(1 + (r + i) % 2) + 1 + (r + i) % 2;
                        EXPECT_LE(now, 3);
                        goro::yield();
                        held.fetch_sub(1 + (r + i) % 2);
                        s.release(1 + (r + i) % 2);
                    }
                    cancel();
                }
            });
        wg.wait();
        EXPECT_TRUE(s.try_acquire(3)) << "permits leaked";
    });
}
