// Tests of goro::exit (runtime.Goexit): the goroutine's destructors run and
// a wait_group::go counts it as done; locks held by RAII guards are
// released; an errgroup task that exits is no failure; run()'s main
// goroutine exiting lets the others finish and run() return (or throw
// deadlock_error when they are stuck and detection is on); misuse from a
// plain thread; and a stress of the last-exit wake-up.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "goro/goro.hpp"
#include "goro/testing.hpp"
#include "misuse_util.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

struct set_on_destroy {
    std::atomic<int>& n;
    ~set_on_destroy() { n.fetch_add(1); }
};

[[gnu::noinline]] void exit_at_depth(int depth, std::atomic<int>& destroyed) {
    set_on_destroy d{destroyed};
    if (depth < 0) return;  // (a way out, for the compiler's recursion check)
    if (depth == 0) goro::exit();
    exit_at_depth(depth - 1, destroyed);
}

}  // namespace

TEST(Exit, RunsDestructorsAndCountsAsDone) {
    goro::run(procs(2), [] {
        std::atomic<int> destroyed{0}, after{0};
        goro::wait_group wg;
        for (int i = 0; i < 10; ++i)
            wg.go([&] {
                exit_at_depth(5, destroyed);
                after.fetch_add(1);  // never reached
            });
        wg.wait();  // done() ran in the guard's destructor
        EXPECT_EQ(destroyed.load(), 10 * 6);
        EXPECT_EQ(after.load(), 0);
    });
}

TEST(Exit, ReleasesLocksHeldByGuards) {
    goro::run(procs(2), [] {
        goro::mutex m;
        goro::wait_group wg;
        wg.go([&] {
            std::lock_guard lk(m);
            goro::sleep_for(1ms);
            goro::exit();
        });
        wg.wait();
        EXPECT_TRUE(m.try_lock());
        m.unlock();
    });
}

// A goroutine started with goro::go that exits: the count of goroutines
// falls back (it really ended), and nothing is reported.
TEST(Exit, PlainGoroutineEnds) {
    goro::run(procs(2), [] {
        goro::chan<int> c = goro::make_chan<int>();
        goro::go([c]() mutable {
            c.send(1);
            goro::exit();
        });
        EXPECT_EQ(c.recv(), 1);
        for (int i = 0; i < 5000 && goro::num_goroutines() > 1; ++i) goro::sleep_for(1ms);
        EXPECT_EQ(goro::num_goroutines(), 1u);
    });
}

TEST(Exit, ErrgroupTaskThatExitsIsNoFailure) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        g.go([] { goro::exit(); });
        g.go([]() -> std::error_code { return {}; });
        EXPECT_FALSE(g.wait_error());
    });
}

// Go: main calling Goexit lets the other goroutines go on. run() returns 0
// once they are done (fn's int result is never produced).
TEST(Exit, MainGoroutineExitWaitsForTheOthers) {
    std::atomic<int> finished{0}, after_exit{0};
    const int r = goro::run(procs(2), [&]() -> int {
        for (int i = 0; i < 20; ++i)
            goro::go([&, i] {
                goro::sleep_for(std::chrono::milliseconds(1 + i % 5));
                finished.fetch_add(1);
            });
        goro::exit();
        after_exit = 1;
        return 7;
    });
    EXPECT_EQ(r, 0);
    EXPECT_EQ(finished.load(), 20);
    EXPECT_EQ(after_exit.load(), 0);
}

TEST(Exit, MainGoroutineExitWithNothingElseReturns) {
    EXPECT_EQ(goro::run(procs(1), [] { goro::exit(); }), 0);
    // And run() works again afterwards.
    EXPECT_EQ(goro::run(procs(1), [] { return 3; }), 3);
}

// The others stuck for good: with deadlock detection, run() throws.
TEST(Exit, MainGoroutineExitThenDeadlockIsDetected) {
    goro::options o = procs(2);
    o.detect_deadlock = true;
    EXPECT_THROW(goro::run(o,
                           [] {
                               goro::chan<int> never = goro::make_chan<int>();
                               goro::go([never]() mutable { never.recv(); });
                               goro::exit();
                           }),
                 goro::deadlock_error);
    // The same inside a bubble (exact detection).
    EXPECT_THROW(goro::testing::bubble([] {
                     goro::chan<int> never = goro::make_chan<int>();
                     goro::go([never]() mutable { never.recv(); });
                     goro::exit();
                 }),
                 goro::deadlock_error);
}

TEST(Exit, MisuseOutsideAGoroutine) {
    goro_test::expect_misuse([] { goro::exit(); }, "goro::exit");
    std::thread t([] { goro_test::expect_misuse([] { goro::exit(); }, "goro::exit"); });
    t.join();
    // goro::blocking's function runs on a plain thread of the pool.
    goro::run(procs(1), [] {
        bool refused = false;
        goro::blocking([&] {
            try {
                goro::exit();
            } catch (const goro::misuse_error&) {
                refused = true;
            }
        });
        EXPECT_TRUE(refused);
    });
}

using ExitDeathTest = ::testing::Test;

TEST(ExitDeathTest, InADestructorDuringUnwindingTerminates) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(goro::run(procs(1),
                           [] {
                               struct exits {
                                   ~exits() { goro::exit(); }
                               };
                               try {
                                   exits e;
                                   throw std::runtime_error("x");
                               } catch (...) {
                               }
                           }),
                 "goro::exit: called while an exception is in flight");
}

// Stress: main exits while many goroutines are still starting, yielding
// and exiting (some with goro::exit, at depth) on 1, 2 and 8 workers: the
// last exit must always wake run() — a lost wake-up hangs (the watchdog
// fails the test) — and every goroutine has finished by then.
TEST(ExitStress, LastExitWakesRunAfterMainExits) {
    goro_test::watchdog dog("run() after main's goro::exit", std::chrono::seconds(60));
    for (unsigned p : {1u, 2u, 8u}) {
        const int rounds = static_cast<int>(scaled(100, 5));
        for (int round = 0; round < rounds; ++round) {
            std::atomic<int> done{0}, destroyed{0};
            const int n = 64;
            goro::run(procs(p), [&] {
                for (int i = 0; i < n; ++i)
                    goro::go([&, i] {
                        struct count {
                            std::atomic<int>& d;
                            ~count() { d.fetch_add(1); }
                        } c{done};
                        if (i % 3 == 0) goro::yield();
                        if (i % 2 == 0) exit_at_depth(i % 4, destroyed);
                    });
                if (round % 2) goro::yield();
                goro::exit();
            });
            ASSERT_EQ(done.load(), n) << "procs " << p << " round " << round;
            dog.pet();
        }
    }
}
