// Tests of goro::wait_group: counting, waking every waiter, misuse, and use
// from plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

TEST(WaitGroup, WaitWithZeroCounterReturns) {
    goro::wait_group wg;
    wg.wait();
    goro::run([] {
        goro::wait_group wg2;
        wg2.wait();
    });
}

TEST(WaitGroup, NegativeCounterThrowsAndKeepsCount) {
    goro::wait_group wg;
    EXPECT_THROW(wg.done(), goro::negative_counter_error);
    EXPECT_EQ(wg.count(), 0);
    wg.add(2);
    EXPECT_THROW(wg.add(-3), goro::negative_counter_error);
    EXPECT_EQ(wg.count(), 2);
    try {
        wg.add(-5);
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("goro::wait_group"), std::string::npos);
    }
    wg.done();
    wg.done();
    wg.wait();
}

TEST(WaitGroup, WakesEveryWaiter) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            goro::wait_group gate, woken;
            gate.add(1);
            const int n = 200;
            std::atomic<int> through{0};
            for (int i = 0; i < n; ++i)
                woken.go([&] {
                    gate.wait();
                    through.fetch_add(1);
                });
            goro::sleep_for(std::chrono::milliseconds(5));
            EXPECT_EQ(through.load(), 0);
            gate.done();
            woken.wait();
            EXPECT_EQ(through.load(), n);
        });
}

TEST(WaitGroup, ReusedForManyRounds) {
    goro::run(procs(2), [] {
        const int rounds = static_cast<int>(scaled(500));
        std::atomic<long> total{0};
        goro::wait_group wg;
        for (int r = 0; r < rounds; ++r) {
            for (int i = 0; i < 20; ++i) wg.go([&] { total.fetch_add(1); });
            wg.wait();
            ASSERT_EQ(total.load(), 20L * (r + 1));
        }
    });
}

TEST(WaitGroup, PlainThreadsWaitForGoroutines) {
    goro::run(procs(2), [] {
        goro::wait_group wg;
        std::atomic<int> done_count{0};
        wg.add(1);
        std::vector<std::thread> waiters;
        for (int i = 0; i < 4; ++i)
            waiters.emplace_back([&] {
                wg.wait();
                done_count.fetch_add(1);
            });
        goro::sleep_for(std::chrono::milliseconds(5));
        EXPECT_EQ(done_count.load(), 0);
        wg.done();
        for (auto& t : waiters) t.join();
        EXPECT_EQ(done_count.load(), 4);
    });
}

TEST(WaitGroup, StressAddDoneRaces) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            const int rounds = static_cast<int>(scaled(300));
            for (int r = 0; r < rounds; ++r) {
                goro::wait_group wg;
                std::atomic<int> n{0};
                for (int i = 0; i < 32; ++i)
                    wg.go([&] {
                        goro::yield();
                        n.fetch_add(1);
                    });
                goro::wait_group w2;
                for (int i = 0; i < 3; ++i) w2.go([&] { wg.wait(); });
                wg.wait();
                ASSERT_EQ(n.load(), 32);
                w2.wait();
            }
        });
}
