// Tests of goro::wait_group: counting, waking every waiter, misuse, and use
// from plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
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

// A throw between go() and wait() destroys the wait_group while its
// goroutines run: its destructor waits for them (their done() would write
// freed memory otherwise). Each goroutine blocks until a channel closes 20 ms
// after the throw, so without the wait the catch block runs first.
TEST(WaitGroup, DestroyedByAThrowWaitsForItsGoroutines) {
    goro::run(procs(2), [] {
        for (int round = 0; round < 20; ++round) {
            auto release = goro::make_chan<int>();
            std::atomic<int> finished{0};
            try {
                goro::wait_group wg;
                for (int i = 0; i < 10; ++i)
                    wg.go([&] {
                        (void)release.recv();
                        goro::yield();
                        finished.fetch_add(1);
                    });
                goro::go([release] {
                    goro::sleep_for(std::chrono::milliseconds(20));
                    release.close();
                });
                throw std::runtime_error("between go() and wait()");
            } catch (const std::runtime_error&) {
                EXPECT_EQ(finished.load(), 10) << "round " << round;
            }
        }
    });
}

// In a normal scope exit a non-zero counter is an add() nobody balanced:
// the destructor must not wait for it (that would hang the scope).
TEST(WaitGroup, DestroyedWithAnUnbalancedAddDoesNotWait) {
    goro::run(procs(1), [] {
        goro::wait_group wg;
        wg.add(1);
        EXPECT_THROW(wg.add(-2), goro::negative_counter_error);
        EXPECT_EQ(wg.count(), 1);
    });
    goro::wait_group outside;  // and with no runtime running, even unwinding
    outside.add(1);
    EXPECT_THROW(
        {
            goro::wait_group inner;
            inner.add(1);
            throw std::runtime_error("no runtime");
        },
        std::runtime_error);
}

// Go's idiom: add(n) up front, then a goroutine per item that calls done()
// itself. A throw before any started leaves counts nobody will take back:
// the destructor must not wait for them (it waits only after go()).
TEST(WaitGroup, AddedUpFrontThenAThrowDoesNotWait) {
    goro::run(procs(2), [] {
        auto result = goro::make_chan<int>(1);
        goro::go([result] {
            try {
                goro::wait_group wg;
                wg.add(3);
                throw std::runtime_error("bad item");
            } catch (const std::runtime_error&) {
                result.send(1);
            }
        });
        const std::size_t i = goro::select(goro::recv_case(result),
                                           goro::recv_case(goro::after(std::chrono::seconds(5))));
        EXPECT_EQ(i, 0u) << "the wait_group's destructor waited for counts nobody takes back";
    });
}
