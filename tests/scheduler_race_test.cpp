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
#include "queue_race.hpp"
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
    goro_test::queue_race race(scaled(400000, 10));
    ring owner;
    goro::detail::goroutine* spill[ring::capacity / 2];
    race.run(
        [&](long i) {
            if (!owner.push(race.item(i))) {
                std::uint32_t k = owner.take_half(spill);
                for (std::uint32_t j = 0; j < k; ++j) race.take(spill[j]);
                if (!owner.push(race.item(i))) race.take(race.item(i));
            }
            if (i % 3 == 0)
                if (goro::detail::goroutine* g = owner.pop()) race.take(g);
        },
        [&] {
            return [&, mine = std::make_shared<ring>()] {
                goro::detail::goroutine* g = mine->steal_from(owner);
                if (!g) return false;
                race.take(g);
                while (goro::detail::goroutine* h = mine->pop()) race.take(h);
                return true;
            };
        },
        [&] { return owner.empty(); },
        [&] {
            while (goro::detail::goroutine* g = owner.pop()) race.take(g);
        });
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
