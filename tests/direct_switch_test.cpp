// Direct switches (scheduler::switch_out): a goroutine that parks, yields or
// exits switches straight to the next one its worker would run, which then
// finishes the first one's park, yield or exit on its own stack; a yield
// with nothing else at hand does not switch at all. These tests pin down
// what must not change with it: each goroutine's thread state on a hand-off
// between two goroutines (not through the worker's own context, which is
// always clean), the loop's periodic duties (timers, the global queue)
// under an endless chain of direct switches or in-place yields, and the
// spreading of yielding goroutines over idle workers.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::read_errno;
using goro_test::write_errno;

namespace {

// The message of the exception being handled, or "" if none.
std::string handled() {
    std::exception_ptr cur = std::current_exception();
    if (!cur) return "";
    try {
        std::rethrow_exception(cur);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "?";
    }
}

struct parks_while_unwinding {
    goro::chan<int>& in;
    goro::chan<int>& out;
    int rounds;
    std::atomic<int>& bad;
    ~parks_while_unwinding() {
        write_errno(3);
        for (int i = 1; i < rounds; ++i) {
            out.send(i);
            (void)in.recv();
            if (std::uncaught_exceptions() != 1 || !handled().empty() || read_errno() != 3)
                bad.fetch_add(1);
        }
    }
};

}  // namespace

// Three goroutines on one worker hand the turn round a ring of unbuffered
// channels, so every hand-off is a park straight into the next goroutine:
// one inside a catch block (its own exception being handled), one in a
// destructor during unwinding (one exception in flight, none handled), one
// with neither. After every hand-off each sees exactly its own state and
// errno, never the previous goroutine's.
TEST(DirectSwitch, EachSideKeepsItsOwnExceptionStateAndErrno) {
    constexpr int rounds = 20000;
    std::atomic<int> bad{0}, done{0};
    goro::run(procs(1), [&] {
        goro::chan<int> a = goro::make_chan<int>(), b = goro::make_chan<int>(),
                        c = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] {  // in a catch block: a -> b
            try {
                throw std::runtime_error("mine");
            } catch (const std::runtime_error&) {
                write_errno(1);
                for (int i = 0; i < rounds; ++i) {
                    (void)a.recv();
                    if (handled() != "mine" || std::uncaught_exceptions() != 0 || read_errno() != 1)
                        bad.fetch_add(1);
                    b.send(i);
                }
            }
            if (!handled().empty()) bad.fetch_add(1);
            done.fetch_add(1);
        });
        wg.go([&] {  // plain: b -> c
            write_errno(2);
            for (int i = 0; i < rounds; ++i) {
                (void)b.recv();
                if (!handled().empty() || std::uncaught_exceptions() != 0 || read_errno() != 2)
                    bad.fetch_add(1);
                c.send(i);
            }
            done.fetch_add(1);
        });
        wg.go([&] {  // in a destructor during unwinding: c -> a
            try {
                parks_while_unwinding p{c, a, rounds, bad};
                a.send(-1);  // the first turn
                (void)c.recv();
                throw std::logic_error("unwinding");
            } catch (const std::logic_error& e) {
                if (std::string(e.what()) != "unwinding") bad.fetch_add(1);
            }
            if (std::uncaught_exceptions() != 0 || !handled().empty()) bad.fetch_add(1);
            done.fetch_add(1);
        });
        wg.wait();
    });
    EXPECT_EQ(done.load(), 3);
    EXPECT_EQ(bad.load(), 0);
}

// A goroutine that only yields, alone on its worker, yields in place (no
// switch); timers and the global queue must still be served: a sleeper's
// timer fires, a goroutine spawned from a plain thread runs.
TEST(DirectSwitch, InPlaceYieldsStillServeTimersAndTheGlobalQueue) {
    goro_test::watchdog dog("a yield loop starved a timer or the global queue");
    for (int round = 0; round < 20; ++round) {
        std::atomic<bool> slept{false}, spawned{false};
        goro::run(procs(1), [&] {
            goro::go([&] {
                goro::sleep_for(1ms);
                slept.store(true);
            });
            std::thread t([&] { goro::go([&] { spawned.store(true); }); });
            while (!slept.load() || !spawned.load()) goro::yield();
            t.join();
        });
        EXPECT_TRUE(slept.load());
        EXPECT_TRUE(spawned.load());
        dog.pet();
    }
}

// An endless chain of direct hand-offs (a ping-pong) does not keep the loop
// from its periodic duties either: a timer set by a third goroutine ends it.
TEST(DirectSwitch, PingPongChainStillServesTimers) {
    goro_test::watchdog dog("a ping-pong starved a timer");
    for (int round = 0; round < 20; ++round) {
        std::atomic<bool> stop{false};
        long rounds = 0;
        goro::run(procs(1), [&] {
            auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
            goro::wait_group wg;
            wg.go([&] {
                for (int v : ping) pong.send(v);
            });
            goro::go([&] {
                goro::sleep_for(2ms);
                stop.store(true);
            });
            while (!stop.load()) {
                ping.send(1);
                (void)pong.recv();
                ++rounds;
            }
            ping.close();
            wg.wait();
        });
        EXPECT_GT(rounds, 0);
        dog.pet();
    }
}

// Two goroutines that do nothing but yield, on two workers: they must end up
// running at the same time, one per worker. (Before, when the worker woken
// by their spawn looked before either was queued, both stayed on one worker
// while the other slept, for the whole run: a yield took 40 ns or 6 ns, by
// luck.) Running at once is seen directly: both inside the section between
// two yields, where neither ever switches.
TEST(DirectSwitch, TwoYieldersSpreadOverTwoWorkers) {
    goro_test::watchdog dog("two yielders never ran at once", std::chrono::seconds(30));
    for (int round = 0; round < 10; ++round) {
        std::atomic<int> inside{0};
        std::atomic<bool> together{false};
        goro::run(procs(2), [&] {
            goro::wait_group wg;
            for (int k = 0; k < 2; ++k)
                wg.go([&] {
                    const auto until = std::chrono::steady_clock::now() + 5s;
                    while (!together.load(std::memory_order_relaxed) &&
                           std::chrono::steady_clock::now() < until) {
                        if (inside.fetch_add(1) == 1) together.store(true);
                        inside.fetch_sub(1);
                        goro::yield();
                    }
                });
            wg.wait();
        });
        EXPECT_TRUE(together.load()) << "round " << round;
        dog.pet();
    }
}

// Goroutines exiting straight into the next one: their stacks are released
// on the next goroutine's stack. Many short lives on one worker, each
// spawning the next before it exits, must all run and leave nothing behind.
TEST(DirectSwitch, ExitsStraightIntoTheNextGoroutine) {
    constexpr int n = static_cast<int>(goro_test::scaled(200000));
    std::atomic<int> ran{0};
    goro::run(procs(1), [&] {
        goro::wait_group wg;
        struct step {
            static void next(goro::wait_group& wg, std::atomic<int>& ran, int left) {
                ran.fetch_add(1);
                if (left > 0) wg.go([&wg, &ran, left] { next(wg, ran, left - 1); });
            }
        };
        wg.go([&] { step::next(wg, ran, n - 1); });
        wg.wait();
    });
    EXPECT_EQ(ran.load(), n);
}
