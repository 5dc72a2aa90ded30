// Tests of goro::stats(): the per-worker counters add up, say where
// goroutines came from, and count steals, sleeps and wakes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

void busy_for(std::chrono::microseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

}  // namespace

TEST(Stats, NoRuntimeNoFigures) {
    const goro::runtime_stats s = goro::stats();
    EXPECT_FALSE(s.running);
    EXPECT_TRUE(s.workers.empty());
    EXPECT_EQ(s.total.goroutines_run, 0u);
}

// Every run starts with a pick, so picks and runs agree once the other
// workers are idle (here: after a sleep that lets them go to sleep).
TEST(Stats, PicksAddUpToRuns) {
    for (unsigned p : {1u, 2u}) {
        goro::run(procs(p), [p] {
            goro::wait_group wg;
            for (int i = 0; i < 200; ++i)
                wg.go([] {
                    goro::yield();
                    goro::yield();
                });
            wg.wait();
            goro::sleep_for(20ms);
            const goro::runtime_stats s = goro::stats();
            ASSERT_TRUE(s.running);
            ASSERT_EQ(s.workers.size(), p);
            EXPECT_GE(s.total.goroutines_run, 201u * 3);
            EXPECT_EQ(s.total.picks(), s.total.goroutines_run);
            std::uint64_t runs = 0;
            for (const goro::worker_stats& w : s.workers) {
                EXPECT_EQ(w.picks(), w.goroutines_run) << "worker " << w.index;
                runs += w.goroutines_run;
            }
            EXPECT_EQ(runs, s.total.goroutines_run);
        });
    }
}

// A ping-pong hands each side to the other through runnext (3 in a row,
// then one through the local queue: scheduler.hpp).
TEST(Stats, PingPongMostlyPicksRunnext) {
    goro::run(procs(2), [] {
        auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] {
            for (int v : ping) pong.send(v);
        });
        const goro::runtime_stats before = goro::stats();
        for (int i = 0; i < 5000; ++i) {
            ping.send(i);
            (void)pong.recv();
        }
        const goro::runtime_stats after = goro::stats();
        ping.close();
        wg.wait();
        const std::uint64_t picks = after.total.picks() - before.total.picks();
        const std::uint64_t runnext = after.total.picks_runnext - before.total.picks_runnext;
        // About two picks a round trip; fewer when a reply was already there
        // (no park), and a worker's count may lag its last pick (TSan saw 9999).
        EXPECT_GE(picks, 9000u);
        EXPECT_GT(runnext * 2, picks) << runnext << " of " << picks << " picks from runnext";
    });
}

TEST(Stats, StealsAreCountedUnderLoad) {
    goro::run(procs(2), [] {
        goro::wait_group wg;
        for (int i = 0; i < 64; ++i) wg.go([] { busy_for(200us); });
        wg.wait();
        const goro::runtime_stats s = goro::stats();
        EXPECT_GE(s.total.steal_successes, 1u);
        EXPECT_GE(s.total.steal_attempts, s.total.steal_successes);
        EXPECT_EQ(s.total.picks_stolen, s.total.steal_successes);
    });
}

TEST(Stats, LiveGoroutinesAndPendingTimers) {
    goro::run(procs(2), [] {
        auto release = goro::make_chan<int>();
        goro::wait_group wg;
        for (int i = 0; i < 10; ++i) wg.go([release] { (void)release.recv(); });
        wg.go([] { goro::sleep_for(50ms); });
        // Wait (bounded) until the sleeper's timer is in the heap.
        goro::runtime_stats s = goro::stats();
        for (int i = 0; i < 1000 && s.timers_pending == 0; ++i) {
            goro::sleep_for(100us);
            s = goro::stats();
        }
        EXPECT_GE(s.goroutines_live, 12);  // main, 10 receivers, the sleeper
        EXPECT_GE(s.timers_pending, 1u);
        release.close();
        wg.wait();
        // The last done() comes a moment before its goroutine has exited.
        EXPECT_TRUE(goro_test::eventually([] { return goro::stats().goroutines_live == 1; }))
            << goro::stats().goroutines_live << " goroutines live";
    });
}

// Idle workers sleep in the kernel and are woken; each wake has a reason.
TEST(Stats, SleepsAndWakesAreCounted) {
    goro::run(procs(2), [] {
        for (int i = 0; i < 3; ++i) goro::sleep_for(10ms);
        const goro::runtime_stats s = goro::stats();
        EXPECT_GE(s.total.futex_sleeps + s.total.poll_sleeps, 2u);
        EXPECT_GE(s.total.wakes_spin + s.total.wakes_recheck + s.total.wakes_timeout, 2u);
        // The timer watcher's sleeps ran out for the main goroutine's timers.
        EXPECT_GE(s.total.wakes_timeout, 1u);
    });
}
