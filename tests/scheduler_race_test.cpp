// Races in the scheduler that ordinary workloads rarely hit: a tiny run
// queue hammered by its owner and two thieves, and timers added just as the
// timer watcher goes to sleep.
#define GORO_ASSERTS 1  // check the run queue's invariants in this test
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "scheduler/run_queue.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

// A 4-slot ring: the owner pushes (spilling half when full, as the
// scheduler does) and pops; two thieves steal half at a time into rings of
// their own and drain them. Every item must come out exactly once.
TEST(RunQueueRace, FourSlotsOwnerAndTwoThieves) {
    using ring = goro::detail::basic_run_queue<4>;
    const long n = scaled(400000, 10);
    std::unique_ptr<goro::detail::goroutine[]> items(new goro::detail::goroutine[n]);
    goro_test::tally seen(n);
    auto take = [&](goro::detail::goroutine* g) {
        const long i = g - items.get();
        ASSERT_TRUE(i >= 0 && i < n);
        seen.hit(i);
    };

    ring owner;
    std::atomic<bool> done{false};
    std::atomic<long> stolen{0};
    std::atomic<int> running{0};
    auto thief = [&] {
        ring mine;
        running.fetch_add(1);
        while (!done.load(std::memory_order_acquire) || !owner.empty()) {
            if (goro::detail::goroutine* g = mine.steal_from(owner)) {
                take(g);
                stolen.fetch_add(1, std::memory_order_relaxed);
                while (goro::detail::goroutine* h = mine.pop()) take(h);
            }
        }
    };
    std::thread t1(thief), t2(thief);
    // Both thieves on a CPU before the owner starts: at load 17 they once
    // got none for the whole run (nothing stolen, the race not exercised).
    while (running.load() < 2) std::this_thread::yield();
    goro::detail::goroutine* spill[ring::capacity / 2];
    for (long i = 0; i < n; ++i) {
        if (!owner.push(&items[i])) {
            std::uint32_t k = owner.take_half(spill);
            for (std::uint32_t j = 0; j < k; ++j) take(spill[j]);
            if (!owner.push(&items[i])) take(&items[i]);
        }
        if (i % 3 == 0)
            if (goro::detail::goroutine* g = owner.pop()) take(g);
        if (i % 512 == 0) std::this_thread::yield();  // let the thieves in on a loaded machine
    }
    done.store(true, std::memory_order_release);
    while (goro::detail::goroutine* g = owner.pop()) take(g);
    t1.join();
    t2.join();
    seen.check("owner and two thieves");
    EXPECT_GT(stolen.load(), 0) << "the thieves never got anything: the race was not exercised";
}

// A timer added (from a plain thread and from goroutines) just as the
// watcher goes to sleep for a later deadline must still fire on time: the
// adder pokes the watcher, or the watcher's recheck sees it.
TEST(TimerWatcherRace, EarlierTimerPokesTheWatcher) {
    for (unsigned p : {1u, 2u, 8u}) {
        goro::run(procs(p), [&] {
            // A far timer keeps a watcher sleeping toward it.
            goro::timer far(1h);
            const int rounds = static_cast<int>(scaled(300, 3));
            std::chrono::nanoseconds worst{};
            for (int r = 0; r < rounds; ++r) {
                // Let every worker go idle, one becoming the watcher.
                std::this_thread::sleep_for(std::chrono::microseconds(50 + r % 200));
                auto start = goro::clock::now();
                if (r % 2) {
                    goro::timer t(std::chrono::microseconds(r % 50));
                    t.c().recv();
                } else {
                    goro::chan<int> ch = goro::make_chan<int>(1);
                    std::thread adder([ch, r] {
                        goro::after_func(std::chrono::microseconds(r % 50), [ch] { ch.send(1); });
                    });
                    ch.recv();
                    adder.join();
                }
                auto late = goro::clock::now() - start;
                if (late > worst) worst = late;
            }
            EXPECT_LT(worst, 500ms) << "procs " << p << ": a timer fired that late";
            far.stop();
        });
    }
}
