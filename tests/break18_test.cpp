// tests/break18_test.cpp — hostile tests of three changes (bd127de): context
// deadline timers carried past the run() they were made in, wait_group's
// wake-up of only the waiters its zeroing counted, and negative / huge
// deadlines (no signed overflow in the monitor, the idle sleep and the
// stuck check).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include "goro/goro.hpp"
#include "goro/testing.hpp"
#include "sync/wait_lock.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::eventually;
using goro_test::procs;
using goro_test::scaled;
using goro_test::wg_state;
using goro_test::wg_waiters;

namespace {

bool is_done(const goro::context& ctx) {
    return ctx.done().try_recv().closed();
}

}  // namespace

// ------------------------------------------------- contexts outliving run()

// A kept deadline context carried across many consecutive runs, each of
// which adopts the lazily started runtime (alternating procs): it must still
// be cancelled at its deadline, once.
TEST(Break18Context, KeptDeadlineSurvivesManyConsecutiveRuns) {
    goro::context kept;
    goro::run(procs(2), [&] { kept = goro::with_timeout(goro::background(), 300ms).first; });
    int runs = 0;
    while (!is_done(kept) && runs < 2000) {
        goro::run(procs(1 + runs % 3),
                  [&] { EXPECT_FALSE(kept.err() && kept.err() != goro::errc::deadline_exceeded); });
        ++runs;
    }
    EXPECT_TRUE(eventually([&] { return is_done(kept); }, 5s)) << "after " << runs << " runs";
    EXPECT_EQ(kept.err(), goro::errc::deadline_exceeded);
}

// Cancelled from a plain thread after run(): the carried timer is stopped,
// the context says canceled, and a later deadline does not change it.
TEST(Break18Context, KeptContextCancelledFromPlainThreadAfterRun) {
    for (int i = 0; i < 50; ++i) {
        goro::context kept;
        goro::cancel_func cancel;
        goro::run(procs(2),
                  [&] { std::tie(kept, cancel) = goro::with_timeout(goro::background(), 2ms); });
        std::thread t([&] { cancel(); });
        t.join();
        EXPECT_TRUE(is_done(kept));
        auto e = kept.err();
        EXPECT_TRUE(e == goro::errc::canceled || e == goro::errc::deadline_exceeded);
        std::this_thread::sleep_for(3ms);
        EXPECT_EQ(kept.err(), e);
    }
}

// The context dropped on a plain thread right as its carried timer fires.
TEST(Break18Context, KeptContextDroppedAsCarriedTimerFires) {
    for (int i = 0; i < scaled(200); ++i) {
        auto kept = std::make_unique<goro::context>();
        goro::run(procs(2), [&] { *kept = goro::with_timeout(goro::background(), 1ms).first; });
        auto done = kept->done();
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::microseconds(i % 7 * 150));
            kept.reset();
        });
        t.join();
        // The done channel copy is an heir: it still closes at the deadline.
        EXPECT_TRUE(eventually([&] { return done.try_recv().closed(); }, 3s)) << i;
    }
}

// A with_cancel child (and a shorter with_timeout child) of the kept
// context: both cancelled by the carried deadlines.
TEST(Break18Context, ChildrenOfKeptContextAreCancelledAfterRun) {
    goro::context child, shorter, parent_kept;
    goro::cancel_func c1, c2;
    goro::run(procs(2), [&] {
        auto [p, pc] = goro::with_timeout(goro::background(), 1s);
        std::tie(child, c1) = goro::with_cancel(p);
        std::tie(shorter, c2) = goro::with_timeout(child, 50ms);
    });
    EXPECT_TRUE(eventually([&] { return is_done(shorter); }, 3s));
    EXPECT_EQ(shorter.err(), goro::errc::deadline_exceeded);
    EXPECT_FALSE(is_done(child)) << "the 1 s parent fired at the 50 ms child's time?";
    EXPECT_TRUE(eventually([&] { return is_done(child); }, 3s));
    EXPECT_EQ(child.err(), goro::errc::deadline_exceeded);
}

// Only the done() channel of the context kept (the context itself dropped
// inside the run): the heir rule says the channel still closes.
TEST(Break18Context, OnlyDoneChannelKeptClosesAfterRun) {
    goro::recv_chan<goro::unit> done;
    goro::run(procs(2), [&] { done = goro::with_timeout(goro::background(), 30ms).first.done(); });
    EXPECT_TRUE(eventually([&] { return done.try_recv().closed(); }, 3s));
}

// Inside a bubble: virtual time; the kept context's timer ends with the
// bubble (it is never fired by a real clock later), and no runtime is kept.
// Was a defect (every run in release): right after bubble() returned,
// kept.err() was already deadline_exceeded. The bubble's worker, with no
// goroutine left, jumped the virtual clock to the pending timer and fired
// it at the bubble's end; with none left it no longer jumps.
TEST(Break18Context, KeptDeadlineMadeInBubbleEndsWithIt) {
    goro::context kept;
    goro::testing::bubble([&] { kept = goro::with_timeout(goro::background(), 10ms).first; });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(is_done(kept)) << kept.err().message();
    EXPECT_EQ(goro::stats().timers_pending, 0u);
    // And a run afterwards is not disturbed by it.
    goro::run(procs(2), [] { goro::sleep_for(1ms); });
}

// Thousands of kept contexts, deadlines spread: all fire after run().
TEST(Break18Context, ThousandsOfKeptContexts) {
    const int n = static_cast<int>(scaled(5000, 5));
    std::vector<goro::context> kept(n);
    goro::run(procs(2), [&] {
        for (int i = 0; i < n; ++i)
            kept[i] =
                goro::with_timeout(goro::background(), 10ms + std::chrono::microseconds(i * 20))
                    .first;
    });
    EXPECT_TRUE(eventually(
        [&] {
            for (auto& c : kept)
                if (!is_done(c)) return false;
            return true;
        },
        10s));
    for (auto& c : kept) EXPECT_EQ(c.err(), goro::errc::deadline_exceeded);
    goro::run(procs(1), [] {});
    EXPECT_EQ(goro::stats().timers_pending, 0u);
}

// Kept contexts whose deadlines are far: the process must exit cleanly (the
// carried timers are released at exit) — in a child process.
TEST(Break18Context, ExitWithCarriedTimersPending) {
    EXPECT_EXIT(
        {
            static std::vector<goro::context> kept(100);
            goro::run(procs(2), [&] {
                for (auto& c : kept) c = goro::with_timeout(goro::background(), 1h).first;
            });
            std::exit(7);
        },
        ::testing::ExitedWithCode(7), "");
}

// Cancel racing the carried fire on the lazy runtime, from many plain
// threads at once.
TEST(Break18Context, CancelsRacingCarriedFires) {
    for (int round = 0; round < scaled(30, 3); ++round) {
        std::vector<std::pair<goro::context, goro::cancel_func>> kept(64);
        goro::run(procs(2), [&] {
            for (auto& k : kept) k = goro::with_timeout(goro::background(), 2ms);
        });
        std::vector<std::thread> ts;
        for (int t = 0; t < 4; ++t)
            ts.emplace_back([&, t] {
                std::this_thread::sleep_for(std::chrono::microseconds(1900 + t * 50));
                for (std::size_t i = t; i < kept.size(); i += 4) kept[i].second();
            });
        for (auto& t : ts) t.join();
        for (auto& k : kept) EXPECT_TRUE(is_done(k.first));
    }
}

// ----------------------------------------------------------- wait_group

// A zeroing done() that is slow to reach the wait lock (its thread is
// descheduled after its RMW — here held in a signal handler) while two more
// rounds begin: round 2 is ended by another done(), round 3's waiter must
// then wait for round 3's done().
// Was a defect (3/3 runs): the zeroing RMW left the waiter count as it was,
// so round 1's waiter was counted by round 1's and round 2's zero alike,
// and the late round-1 done() woke the head of the queue, round 3's waiter,
// while the counter was 1. Now a zero clears the count it covers (as Go's
// Add stores 0) and owes that many wake-ups, given to the first waiters of
// the queue: round 2's zero wakes round 1's waiter, the late round-1 done()
// round 2's, and round 3's waits for its own done().
TEST(Break18WaitGroup, SlowZeroingDoneDoesNotWakeALaterRoundsWaiter) {
    static std::atomic<bool> in_handler{false}, let_go{false};
    struct sigaction sa {};
    sa.sa_handler = [](int) {
        in_handler.store(true);
        while (!let_go.load()) {
        }
    };
    sigaction(SIGUSR2, &sa, nullptr);
    in_handler = false;
    let_go = false;
    goro::run(procs(2), [] {});  // a runtime for the plain threads' waits
    goro::wait_group wg;
    std::atomic<bool> round3_ended{false};
    std::atomic<int> round3_early{-1};
    wg.add(1);
    std::thread a([&] { wg.wait(); });
    ASSERT_TRUE(eventually([&] { return wg_waiters(wg) == 1; }));
    goro::detail::spin_mutex& wl = goro::detail::wait_lock_for(&wg);
    wl.lock();
    std::thread x([&] { wg.done(); });  // round 1's zero; then blocks on wl
    // Its zero cleared the count too (then it blocks on wl): counter and
    // waiters both 0. (The counter alone could be 0 before the clear.)
    ASSERT_TRUE(eventually([&] { return wg_state(wg) == 0; }));
    std::this_thread::sleep_for(2ms);
    pthread_kill(x.native_handle(), SIGUSR2);
    ASSERT_TRUE(eventually([&] { return in_handler.load(); }));
    wl.unlock();
    wg.add(1);  // round 2
    std::atomic<bool> c_returned{false};
    std::thread c([&] {
        wg.wait();
        c_returned = true;
    });
    // Round 1's zero cleared its waiter from the count: only c is counted.
    ASSERT_TRUE(eventually([&] { return wg_waiters(wg) == 1; }));
    wg.done();  // round 2's zero: one wake-up, for the head of the queue (a)
    a.join();
    wg.add(1);  // round 3
    std::thread d([&] {
        wg.wait();
        round3_early = round3_ended.load() ? 0 : 1;
    });
    ASSERT_TRUE(eventually([&] { return wg_waiters(wg) == 1; }));
    let_go = true;  // the slow round-1 done() goes on: wakes c, the head now
    x.join();
    c.join();
    EXPECT_TRUE(c_returned.load());
    std::this_thread::sleep_for(20ms);
    round3_ended = true;
    wg.done();
    d.join();
    EXPECT_EQ(round3_early.load(), 0) << "round 3's waiter returned before round 3's done()";
}

// Tokens: every add() that happened before a wait() began must have its
// done() before that wait() returns. Producers add/done concurrently,
// waiters on goroutines and plain threads wait in a loop.
// Showed the defect of SlowZeroingDoneDoesNotWakeALaterRoundsWaiter without
// forcing: under TSan (fresh-clone CI) 5 early returns of 96,221 waits.
TEST(Break18WaitGroup, NoWaiterReturnsBeforeATokenAddedBeforeItsWait) {
    constexpr int tokens = 1 << 16;
    auto released = std::make_unique<std::atomic<bool>[]>(tokens);
    std::atomic<int> next{0}, last_added{-1}, early{0}, waits{0};
    std::atomic<bool> stop{false};
    goro::wait_group wg;
    goro::run(procs(2), [&] {
        goro::wait_group all;
        std::vector<std::thread> plain;
        auto waiter = [&] {
            while (!stop.load()) {
                int i = last_added.load();
                if (goro::in_goroutine()) goro::yield();
                if (i < 0) continue;
                wg.wait();
                if (!released[i].load()) early.fetch_add(1);
                waits.fetch_add(1);
            }
        };
        for (int w = 0; w < 4; ++w) all.go(waiter);
        for (int w = 0; w < 2; ++w) plain.emplace_back(waiter);
        for (int p = 0; p < 3; ++p)
            all.go([&] {
                for (;;) {
                    int i = next.fetch_add(1);
                    if (i >= tokens) break;
                    wg.add(1);
                    int prev = last_added.load();
                    while (prev < i && !last_added.compare_exchange_weak(prev, i)) {
                    }
                    if (i % 3 == 0) goro::yield();
                    released[i].store(true);
                    wg.done();
                    if (i % 5 == 0) goro::yield();
                }
            });
        // Producers end: the counter ends at zero, every waiter returns.
        while (next.load() < tokens) goro::sleep_for(1ms);
        goro::sleep_for(5ms);
        stop = true;
        bool joined = false;
        auto ok = goro::make_chan<bool>(1);
        goro::go([&] {
            all.wait();
            ok.send(true);
        });
        int r = goro::select(goro::recv_case(ok), goro::recv_case(goro::after(10s)));
        joined = r == 0;
        EXPECT_TRUE(joined) << "a waiter hung (lost wake-up)";
        for (auto& t : plain) t.join();
    });
    EXPECT_EQ(early.load(), 0) << "of " << waits.load() << " waits";
}

// Destroyed right after wait() returns, over many rounds with waiters on
// several goroutines (ASan: no use after free by the zeroing done()).
TEST(Break18WaitGroup, DestroyedRightAfterWait) {
    goro::run(procs(2), [] {
        for (int i = 0; i < scaled(3000); ++i) {
            auto wg = std::make_unique<goro::wait_group>();
            wg->add(1);
            goro::go([w = wg.get()] { w->done(); });
            wg->wait();
            wg.reset();
        }
    });
}

// Waiters parked when run() ends (nobody left to call done()): unwound, no
// hang; the next run works.
TEST(Break18WaitGroup, WaitersParkedAtShutdown) {
    for (int i = 0; i < 20; ++i) {
        static goro::wait_group wg;
        goro::run(procs(2), [] {
            wg.add(1);
            for (int w = 0; w < 8; ++w) goro::go([] { wg.wait(); });
            goro::sleep_for(1ms);
        });
        wg.done();
        wg.wait();
    }
    EXPECT_EQ(goro_test::value_through_a_fresh_run(), 42);
}

// --------------------------------------------- negative / huge deadlines

TEST(Break18Deadline, ExtremeSleepsAndTimers) {
    using ns = std::chrono::nanoseconds;
    goro::run(procs(2), [] {
        auto t0 = std::chrono::steady_clock::now();
        goro::sleep_for(ns::min());
        goro::sleep_for(ns(std::numeric_limits<std::int64_t>::min() + 1));
        goro::sleep_for(std::chrono::hours::min());
        goro::sleep_until(goro::clock::time_point::min());
        goro::sleep_until(goro::clock::time_point::min() + ns(1));
        goro::sleep_until(goro::clock::time_point{});
        goro::sleep_until(goro::clock::now() - std::chrono::hours(1000000));
        EXPECT_EQ(
            goro::select(goro::recv_case(goro::after(ns::min())), goro::recv_case(goro::after(3s))),
            0);
        EXPECT_EQ(goro::select(goro::recv_case(goro::after(-std::chrono::hours(100000))),
                               goro::recv_case(goro::after(3s))),
                  0);
        EXPECT_EQ(goro::select(goro::recv_case(goro::after(ns::max())),
                               goro::recv_case(goro::after(5ms))),
                  1);
        EXPECT_EQ(goro::select(goro::recv_case(goro::after(std::chrono::hours::max())),
                               goro::recv_case(goro::after(5ms))),
                  1);
        std::atomic<int> fired{0};
        auto f1 = goro::after_func(ns::min(), [&] { fired.fetch_add(1); });
        auto f2 = goro::after_func(ns::max(), [&] { fired.fetch_add(100); });
        goro::sleep_for(20ms);  // the monitor looks at an overdue min deadline meanwhile
        EXPECT_EQ(fired.load(), 1);
        f2.stop();
        goro::timer t(ns::max());
        t.reset(ns::min());
        EXPECT_EQ(goro::select(goro::recv_case(t.c()), goro::recv_case(goro::after(3s))), 0);
        t.reset(ns::max());
        t.reset(ns::min() + ns(1));
        EXPECT_EQ(goro::select(goro::recv_case(t.c()), goro::recv_case(goro::after(3s))), 0);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    });
}

TEST(Break18Deadline, ExtremeContextDeadlines) {
    goro::run(procs(2), [] {
        auto [a, ca] = goro::with_deadline(goro::background(), goro::clock::time_point::min());
        EXPECT_EQ(a.err(), goro::errc::deadline_exceeded);
        auto [b, cb] = goro::with_deadline(goro::background(), goro::clock::time_point::max());
        EXPECT_FALSE(b.err());
        auto [c, cc] = goro::with_timeout(b, std::chrono::nanoseconds::max());
        EXPECT_FALSE(c.err());
        auto [d, cd] = goro::with_timeout(goro::background(), std::chrono::nanoseconds::min());
        EXPECT_EQ(d.err(), goro::errc::deadline_exceeded);
        auto [e, ce] = goro::with_timeout(goro::background(), -std::chrono::hours(1));
        EXPECT_EQ(e.err(), goro::errc::deadline_exceeded);
        goro::sleep_for(5ms);
        EXPECT_FALSE(b.err());
        cb();
        EXPECT_EQ(c.err(), goro::errc::canceled);
    });
    // A kept time_point::max() deadline context across the end of run.
    goro::context kept;
    goro::run(procs(2), [&] {
        kept = goro::with_deadline(goro::background(), goro::clock::time_point::max()).first;
    });
    std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(kept.err());
}

// Deadlock detection and shutdown's stuck check with timers at the clock's
// minimum around: no overflow (UBSan), and the deadlock is still reported.
TEST(Break18Deadline, StuckCheckWithSaturatedMinimumDeadline) {
    auto t0 = std::chrono::steady_clock::now();
    goro::options o = procs(2);
    o.detect_deadlock = true;
    bool threw = false;
    try {
        goro::run(o, [] {
            auto never = goro::make_chan<int>();
            for (int i = 0; i < 4; ++i)
                goro::go([never]() mutable {
                    for (int k = 0; k < 100; ++k) goro::sleep_until(goro::clock::time_point::min());
                    (void)never.recv();
                });
            (void)never.recv();
        });
    } catch (const goro::deadlock_error&) {
        threw = true;
    }
    EXPECT_TRUE(threw);
    // Shutdown with wait_group waiters nobody can release, and goroutines
    // sleeping to the minimum in a loop.
    goro::run(procs(2), [] {
        static goro::wait_group wg;
        wg.add(1);
        for (int i = 0; i < 3; ++i) goro::go([] { wg.wait(); });
        for (int i = 0; i < 3; ++i)
            goro::go([i] {
                for (int k = 0; k < 200000; ++k)
                    goro::sleep_until(goro::clock::time_point::min() + std::chrono::nanoseconds(i));
            });
        goro::sleep_for(2ms);
    });
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}
