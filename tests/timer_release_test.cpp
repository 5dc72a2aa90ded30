// Tests that a timer is released once nothing can observe it (issue 12, Go
// 1.23's "unreferenced timers are collected"): the last handle of an after()
// channel, a timer or a ticker (the object or any copy of its c()) stops the
// timer and frees it; a held handle still fires; after_func runs unheld. And
// races of the firing against the last handle's destruction (TSan).
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/stats.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

std::size_t pending() {
    return goro::stats().timers_pending;
}

// Resident set size in bytes (/proc/self/statm), 0 if unreadable.
long rss_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

// The loop issue 12 names: a select over a ready channel and after(1h). Each
// after(1h) is dropped when the select returns; before the fix every one
// stayed in the timer heap until it fired (200,000 pending timers, ~70 MB).
TEST(TimerRelease, AfterInASelectLoopDoesNotAccumulate) {
    goro::run(procs(2), [] {
        const long n = scaled(200'000, 10);
        auto ready = goro::make_chan<int>(1);
        std::size_t max_pending = 0;
        long ready_won = 0;
        const long rss0 = rss_bytes();
        long rss_warm = 0;
        for (long i = 0; i < n; ++i) {
            ready.send(1);
            int k = goro::select(goro::recv_case(ready), goro::recv_case(goro::after(1h)));
            if (k == 0) ++ready_won;
            if (i % 1000 == 0) max_pending = std::max(max_pending, pending());
            if (i == n / 10) rss_warm = rss_bytes();
        }
        EXPECT_EQ(ready_won, n) << "after(1h) must never be the case taken";
        EXPECT_LT(max_pending, 1000u) << "dropped after() timers stay in the heap";
        EXPECT_LE(pending(), 1u);
        const long rss1 = rss_bytes();
        std::printf(
            "%ld rounds, at most %zu timers pending; rss: start %ld KiB, after %ld "
            "rounds %ld KiB, end %ld KiB\n",
            n, max_pending, rss0 / 1024, n / 10, rss_warm / 1024, rss1 / 1024);
        // Generous: leaking the 180,000 iterations after warm-up would be
        // ~60 MB (a channel, a state and an arm each, plus a heap entry).
        if (!goro_test::sanitized && rss0 > 0) {
            EXPECT_LT(rss1 - rss_warm, 16L << 20);
        }
    });
}

// A handle held keeps its timer: it fires, and the heap holds it until then.
TEST(TimerRelease, HeldAfterChannelStillFires) {
    goro::run(procs(2), [] {
        const std::size_t base = pending();
        auto c = goro::after(20ms);
        EXPECT_EQ(pending(), base + 1);
        auto copy = c;
        c = {};  // one handle of two dropped: still pending
        EXPECT_EQ(pending(), base + 1);
        EXPECT_TRUE(copy.recv().has_value());
        EXPECT_LE(pending(), base);
    });
}

TEST(TimerRelease, ManyHeldThenDroppedLeaveTheHeap) {
    goro::run(procs(2), [] {
        const std::size_t base = pending();
        std::vector<goro::recv_chan<goro::clock::time_point>> held;
        for (int i = 0; i < 1000; ++i) held.push_back(goro::after(1h));
        EXPECT_EQ(pending(), base + 1000);
        held.resize(500);
        EXPECT_EQ(pending(), base + 500);
        held.clear();
        EXPECT_EQ(pending(), base);
    });
}

// A select blocked on after() (its only handle is the select's case) wakes.
TEST(TimerRelease, SelectBlockedOnAfterWakes) {
    goro::run(procs(2), [] {
        goro::chan<int> never;
        for (int i = 0; i < 20; ++i) {
            int k = goro::select(goro::recv_case(never), goro::recv_case(goro::after(1ms)));
            EXPECT_EQ(k, 1);
        }
        // And a plain receive on a temporary.
        EXPECT_TRUE(goro::after(1ms).recv().has_value());
    });
}

// The firing on one worker racing the last handle's destruction on another
// (or on the same one): with deadlines of 0 to ~3 us, a handle dropped at
// once, after a spin, after receiving, or by another goroutine it was sent
// to. Run under TSan for the race; the heap must end empty.
TEST(TimerRelease, FiringRacesTheLastHandlesDestruction) {
    goro_test::watchdog dog("FiringRacesTheLastHandlesDestruction");
    goro::run(procs(4), [&] {
        const std::size_t base = pending();
        const long rounds = scaled(100'000, 20);
        auto handoff = goro::make_chan<goro::recv_chan<goro::clock::time_point>>(64);
        goro::wait_group wg;
        wg.go([&] {
            for (auto c : handoff) c = {};  // the last handle, dropped on another goroutine
        });
        goro::wait_group senders;
        for (int g = 0; g < 4; ++g) {
            senders.go([&, g] {
                unsigned x = 2463534242u + static_cast<unsigned>(g);
                for (long i = 0; i < rounds; ++i) {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    auto c = goro::after(std::chrono::nanoseconds(x % 3000));
                    for (unsigned s = x % 2000; s > 0; --s)
                        std::atomic_signal_fence(std::memory_order_seq_cst);
                    switch (x % 4) {
                        case 0:
                            c = {};
                            break;
                        case 1:
                            handoff.send(std::move(c));
                            break;
                        case 2:
                            (void)c.recv();
                            c = {};  // right after the receive the fire path returns
                            break;
                        default:
                            (void)c.try_recv();
                            break;
                    }
                    if (i % 256 == 0) dog.pet();
                }
            });
        }
        senders.wait();
        handoff.close();
        wg.wait();
        EXPECT_LE(pending(), base) << "a dropped timer stayed in the heap";
    });
}

// The same race with tickers (periodic: the fire re-arms) and timers, from
// goroutines and from plain threads (the lazy runtime).
TEST(TimerRelease, TickersAndTimersDroppedWhileFiring) {
    goro_test::watchdog dog("TickersAndTimersDroppedWhileFiring");
    const long rounds = scaled(20'000, 10);
    auto body = [&](unsigned seed) {
        unsigned x = seed;
        for (long i = 0; i < rounds; ++i) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (x & 1) {
                goro::ticker k(std::chrono::nanoseconds(1 + x % 2000));
                for (unsigned s = x % 3000; s > 0; --s)
                    std::atomic_signal_fence(std::memory_order_seq_cst);
                if (x & 2) (void)k.c().try_recv();
            } else {
                goro::timer t(std::chrono::nanoseconds(x % 2000));
                auto c = t.c();
                for (unsigned s = x % 3000; s > 0; --s)
                    std::atomic_signal_fence(std::memory_order_seq_cst);
                if (x & 2) t = goro::timer(1h);  // the old one's object handle goes first
            }
            if (i % 256 == 0) dog.pet();
        }
    };
    goro::run(procs(4), [&] {
        goro::wait_group wg;
        for (unsigned g = 0; g < 4; ++g) wg.go([&, g] { body(88172645u + g); });
        wg.wait();
        EXPECT_EQ(pending(), 0u);
    });
    std::thread a([&] { body(1234567u); });
    std::thread b([&] { body(7654321u); });
    a.join();
    b.join();
    EXPECT_EQ(pending(), 0u) << "plain threads' timers on the lazy runtime";
}

// ---- Ownership (issue 12, item 2): one rule for timer, ticker and after —
// the handles own the timer; the last handle going stops it.

TEST(TimerOwnership, DroppingATickersLastHandleStopsIt) {
    goro::run(procs(2), [] {
        const std::size_t base = pending();
        {
            goro::ticker k(1ms);
            EXPECT_EQ(pending(), base + 1);
            EXPECT_TRUE(k.c().recv().has_value());
        }
        EXPECT_EQ(pending(), base) << "a ticker with no handle left keeps ticking";
        // Dropping the object while a copy of c() lives keeps it ticking
        // (the copy can still receive), until the copy goes too.
        goro::recv_chan<goro::clock::time_point> c;
        {
            goro::ticker k(1ms);
            c = k.c();
        }
        for (int i = 0; i < 3; ++i) EXPECT_TRUE(c.recv().has_value());
        EXPECT_EQ(pending(), base + 1);
        c = {};
        EXPECT_EQ(pending(), base);
        // Moving over a ticker drops the old one.
        goro::ticker a(1h);
        goro::ticker b(1h);
        EXPECT_EQ(pending(), base + 2);
        a = std::move(b);
        EXPECT_EQ(pending(), base + 1);
    });
}

TEST(TimerOwnership, DroppingATimersLastHandleStopsIt) {
    goro::run(procs(2), [] {
        const std::size_t base = pending();
        { goro::timer t(1h); }
        EXPECT_EQ(pending(), base);
        goro::recv_chan<goro::clock::time_point> c;
        {
            goro::timer t(5ms);
            goro::timer copy = t;
            c = t.c();
        }
        EXPECT_EQ(pending(), base + 1);
        EXPECT_TRUE(c.recv().has_value()) << "a held c() copy still fires";
        c = {};
        EXPECT_EQ(pending(), base);
    });
}

// A temporary's channel is a handle: Go 1.23's `for range NewTicker(d).C`.
TEST(TimerOwnership, ATemporaryTickersChannelKeepsTicking) {
    goro::run(procs(2), [] {
        int ticks = 0;
        for (auto tick : goro::ticker(1ms).c()) {
            (void)tick;
            if (++ticks == 3) break;
        }
        EXPECT_EQ(ticks, 3);
        EXPECT_TRUE(goro::timer(1ms).c().recv().has_value());
    });
}

// after_func has no channel: it runs whether or not its handle is kept.
TEST(TimerOwnership, AfterFuncRunsWithItsHandleDropped) {
    goro::run(procs(2), [] {
        auto done = goro::make_chan<int>(1);
        (void)goro::after_func(1ms, [done] { done.send(7); });
        EXPECT_EQ(done.recv(), 7);
    });
}
