// go() from a goroutine that keeps spawning yields once its worker's run
// queue spills (detail::spawn_yield_point), so the goroutines it made run
// and end instead of all living at once, as Go's scheduler preempts such a
// spawner. Without it, one worker held every goroutine of the loop: a
// stack page and page tables each (1M spawns: 1M page faults, 5 s of
// kernel time).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

namespace {

// Spawns n goroutines that each count themselves done; returns the most
// goroutines seen alive at once.
std::size_t spawn_loop(long n) {
    goro::wait_group wg;
    std::size_t most = 0;
    for (long i = 0; i < n; ++i) {
        wg.go([] {});
        if ((i & 63) == 0) most = std::max(most, goro::num_goroutines());
    }
    wg.wait();
    return most;
}

}  // namespace

TEST(SpawnYield, OneWorkerKeepsASpawningLoopBounded) {
    goro::run(procs(1), [] {
        const std::size_t most = spawn_loop(scaled(200000, 10));
        EXPECT_LT(most, 4096u) << "goroutines alive at once while one goroutine spawned";
    });
}

TEST(SpawnYield, TwoWorkersKeepASpawningLoopBounded) {
    goro::run(procs(2), [] {
        const std::size_t most = spawn_loop(scaled(200000, 10));
        EXPECT_LT(most, 4096u) << "goroutines alive at once while one goroutine spawned";
    });
}

// Every go() form goes through the yield point; what they run is unchanged
// and nothing is lost, with spawners on both workers at once.
TEST(SpawnYield, EveryFormRunsEachGoroutineOnce) {
    goro::run(procs(2), [] {
        const long n = scaled(20000, 10);
        std::atomic<long> sum{0};
        goro::wait_group spawners;
        for (int s = 0; s < 4; ++s)
            spawners.go([&, s] {
                goro::wait_group wg;
                goro::errgroup eg;
                for (long i = 0; i < n; ++i) {
                    switch ((i + s) % 4) {
                        case 0:
                            wg.go([&, i] { sum += i; });
                            break;
                        case 1:
                            wg.add(1);
                            goro::go(
                                [&](long v) {
                                    sum += v;
                                    wg.done();
                                },
                                i);
                            break;
                        case 2:
                            eg.go([&, i] { sum += i; });
                            break;
                        default:
                            wg.go(goro::spawn_options{.stack_size = 256 << 10},
                                  [&, i] { sum += i; });
                            break;
                    }
                }
                wg.wait();
                eg.wait();
            });
        spawners.wait();
        EXPECT_EQ(sum.load(), 4 * (n * (n - 1) / 2));
    });
}
