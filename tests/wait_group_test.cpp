// Tests of goro::wait_group: counting, waking every waiter, misuse, and use
// from plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "sync/wait_lock.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
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

// Reuse for a new round before the last round's waiters were woken: the
// done() that took the counter to zero is still on its way to the wait lock
// when another party adds for the next round and waits. That waiter belongs
// to the new round and must wait for its done(), not be woken with the old
// round. The window is made wide: a plain thread holds the wait lock over
// the zeroing done(), then lets go and at once adds and waits (it is
// running, the done() sleeps on the lock, so it gets the lock first).
TEST(WaitGroup, WaiterOfANewRoundIsNotWokenWithThePreviousRound) {
    goro::run(procs(2), [] {
        int early = 0, rounds = 0;
        for (int round = 0; round < 20; ++round) {
            goro::wait_group wg;
            wg.add(1);
            auto old_back = goro::make_chan<goro::unit>(1);
            goro::go([&] {
                wg.wait();  // the previous round's waiter
                old_back.send({});
            });
            goro::sleep_for(2ms);  // (registered by now, or the round proves less)
            std::atomic<bool> lock_held{false}, second_done{false};
            auto new_back = goro::make_chan<bool>(1);
            std::thread next_round([&] {
                goro::detail::spin_mutex& wl = goro::detail::wait_lock_for(&wg);
                wl.lock();
                lock_held = true;
                while (wg.count() != 0) std::this_thread::yield();  // the old round ended
                std::this_thread::sleep_for(2ms);  // its done() now waits for the lock
                wl.unlock();
                wg.add(1);  // the new round
                wg.wait();
                new_back.send(second_done.load());
            });
            while (!lock_held.load()) std::this_thread::yield();
            wg.done();  // ends the old round
            old_back.recv();
            goro::sleep_for(5ms);
            second_done = true;
            wg.done();  // ends the new round
            if (!new_back.recv().value()) ++early;
            ++rounds;
            next_round.join();
        }
        EXPECT_EQ(early, 0) << "of " << rounds << " rounds, the new round's waiter was woken "
                            << "before its done()";
    });
}
