// Tests of goro::lock_os_thread / unlock_os_thread (runtime.LockOSThread):
// a locked goroutine keeps its thread across 1000 parks and yields while
// other goroutines load every worker (and an unlocked one, the control,
// does move), nesting, unlocking at exit, no-ops on plain threads, and
// shutdown unwinding a locked goroutine.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "fibers/goroutine.hpp"
#include "goro/goro.hpp"
#include "scheduler/scheduler.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

// The calling thread's id, read anew on every call: std::this_thread::get_id
// (pthread_self, declared const) may be computed once per function by the
// compiler and reused across a park — after which the goroutine may run on
// another thread.
[[gnu::noinline]] long os_thread_id() {
    return ::syscall(SYS_gettid);
}

// Loads every worker until `stop`: goroutines that spin a little and
// yield, and ping-pong pairs (which hand runnext back and forth).
void load_workers(std::atomic<bool>& stop, goro::wait_group& wg, int n) {
    for (int i = 0; i < n; ++i)
        wg.go([&] {
            volatile unsigned sink = 0;  // the goroutine's own (no race, no overflow)
            while (!stop.load(std::memory_order_relaxed)) {
                for (unsigned k = 0; k < 200; ++k) sink = sink + k;
                goro::yield();
            }
        });
    for (int i = 0; i < n / 2; ++i) {
        goro::chan<int> a = goro::make_chan<int>(), b = goro::make_chan<int>();
        wg.go([&, a, b]() mutable {
            while (!stop.load(std::memory_order_relaxed)) {
                a.send(1);
                b.recv();
            }
            a.close();
        });
        wg.go([a, b]() mutable {
            while (a.recv()) b.send(1);
        });
    }
}

// 1000 rounds of parking and yielding, fed alternately by a goroutine and
// by a plain thread (whose readies go through the global queue, to any
// worker); returns how many rounds resumed on another thread than the
// first.
int rounds_on_other_threads(bool locked) {
    std::atomic<int> moved{0};
    std::atomic<bool> stop{false};
    goro::wait_group load;
    load_workers(stop, load, 8);
    goro::chan<int> feed = goro::make_chan<int>(), plain_feed = goro::make_chan<int>();
    std::thread plain([plain_feed]() mutable {
        for (int i = 0; i < 500; ++i) plain_feed.send(i);
    });
    goro::wait_group wg;
    wg.go([feed]() mutable {
        for (int i = 0; i < 500; ++i) feed.send(i);
    });
    wg.go([&, feed, plain_feed]() mutable {
        if (locked) goro::lock_os_thread();
        const auto home = os_thread_id();
        for (int i = 0; i < 1000; ++i) {
            (i % 2 ? plain_feed : feed).recv();  // parks; readied elsewhere
            if (os_thread_id() != home) moved.fetch_add(1);
            if (i % 3 == 0) goro::yield();
            if (i % 50 == 0) goro::sleep_for(100us);  // readied by a timer
            if (os_thread_id() != home) moved.fetch_add(1);
        }
        if (locked) goro::unlock_os_thread();
    });
    wg.wait();
    plain.join();
    stop = true;
    load.wait();
    return moved.load();
}

}  // namespace

TEST(LockOSThread, ThreadUnchangedAcrossParksUnderLoad) {
    goro::options o = procs(4);
    o.dump_on_sigquit = true;
    goro::run(o, [] {
        EXPECT_EQ(rounds_on_other_threads(true), 0);
        // The control: unlocked, the same goroutine does move (else the
        // test above would prove nothing).
        EXPECT_GT(rounds_on_other_threads(false), 0);
    });
}

TEST(LockOSThread, NestsLikeGo) {
    goro::run(procs(2), [] {
        goro::wait_group wg;
        wg.go([] {
            auto* g = goro::detail::this_goroutine_record();
            goro::lock_os_thread();
            goro::lock_os_thread();
            auto* w = g->pinned_to;
            EXPECT_NE(w, nullptr);
            goro::unlock_os_thread();
            goro::sleep_for(1ms);
            EXPECT_EQ(g->pinned_to, w) << "one unlock of two must leave it locked";
            EXPECT_EQ(goro::detail::this_worker(), w);
            goro::unlock_os_thread();
            EXPECT_EQ(g->pinned_to, nullptr);
            goro::unlock_os_thread();  // nothing locked: no-op
            EXPECT_EQ(g->lock_count, 0u);
        });
        wg.wait();
    });
}

// Exiting while locked unlocks: goroutines that reuse the record are free.
TEST(LockOSThread, ExitUnlocks) {
    goro::run(procs(2), [] {
        std::atomic<int> pinned{0};
        for (int round = 0; round < 50; ++round) {
            goro::wait_group wg;
            wg.go([] {
                goro::lock_os_thread();
                goro::yield();
            });
            wg.go([] {
                goro::lock_os_thread();
                goro::exit();
            });
            wg.wait();
            goro::wait_group wg2;
            for (int i = 0; i < 8; ++i)
                wg2.go([&] {
                    if (goro::detail::this_goroutine_record()->pinned_to) pinned.fetch_add(1);
                });
            wg2.wait();
        }
        EXPECT_EQ(pinned.load(), 0);
    });
}

TEST(LockOSThread, PlainThreadNoOp) {
    goro::lock_os_thread();
    goro::unlock_os_thread();
    goro::unlock_os_thread();
    SUCCEED();  // nothing to observe: a plain thread stays on itself
    std::thread t([] {
        goro::lock_os_thread();
        goro::unlock_os_thread();
    });
    t.join();
}

// A locked goroutine parked forever is unwound at shutdown on its worker.
TEST(LockOSThread, ShutdownUnwindsALockedGoroutine) {
    std::atomic<bool> unwound{false};
    goro::run(procs(2), [&] {
        std::atomic<bool> parked{false};
        goro::go([&] {
            struct mark {
                std::atomic<bool>& u;
                ~mark() { u = true; }
            } m{unwound};
            goro::lock_os_thread();
            goro::chan<int> never = goro::make_chan<int>();
            parked = true;
            never.recv();
        });
        while (!parked.load()) goro::sleep_for(1ms);
    });
    EXPECT_TRUE(unwound.load());
}

// Many locked goroutines, each on whatever worker it started on, readied
// from plain threads and goroutines, mixed with unlocked traffic: each
// stays on its thread, and everything completes (no lost wake-up of a
// sleeping worker whose pinned queue got work).
TEST(LockOSThreadStress, ManyLockedGoroutinesReadiedFromEverywhere) {
    for (unsigned p : {1u, 2u, 8u}) {
        std::atomic<int> moved{0}, finished{0};
        const int locked = 16, rounds = static_cast<int>(scaled(300, 10));
        std::vector<goro::chan<int>> feeds;
        for (int i = 0; i < locked; ++i) feeds.push_back(goro::make_chan<int>(1));
        std::thread plain([&] {
            for (int r = 0; r < rounds; ++r)
                for (int i = 0; i < locked; i += 2) feeds[i].send(r);
        });
        goro::run(procs(p), [&] {
            goro::wait_group wg;
            for (int i = 0; i < locked; ++i) {
                if (i % 2) {
                    wg.go([&, i] {
                        for (int r = 0; r < rounds; ++r) feeds[i].send(r);
                    });
                }
                wg.go([&, i] {
                    goro::lock_os_thread();
                    const auto home = os_thread_id();
                    for (int r = 0; r < rounds; ++r) {
                        feeds[i].recv();
                        if (r % 7 == 0) goro::yield();
                        if (os_thread_id() != home) moved.fetch_add(1);
                    }
                    finished.fetch_add(1);
                });
            }
            wg.wait();
        });
        plain.join();
        EXPECT_EQ(moved.load(), 0) << "procs " << p;
        EXPECT_EQ(finished.load(), locked);
    }
}
