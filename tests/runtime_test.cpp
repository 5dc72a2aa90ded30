// Tests of the runtime API: run, go, yield, sleep, ids, counts, shutdown
// unwinding, and the scheduler under load with 1, 2 and 8 workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

class Scheduler : public ::testing::TestWithParam<unsigned> {
  protected:
    void TearDown() override {
        // Nothing may outlive run(): every goroutine has exited or been unwound.
        EXPECT_EQ(goro::num_goroutines(), 0u);
    }
};

INSTANTIATE_TEST_SUITE_P(Procs, Scheduler, ::testing::Values(1u, 2u, 8u));

TEST(Runtime, RunReturnsIntResult) {
    EXPECT_EQ(goro::run([] { return 42; }), 42);
    EXPECT_EQ(goro::run([] {}), 0);
}

TEST(Runtime, RunCanBeCalledAgain) {
    for (int i = 0; i < 20; ++i) EXPECT_EQ(goro::run(procs(1 + i % 3), [i] { return i; }), i);
}

TEST(Runtime, RunPropagatesMainException) {
    EXPECT_THROW(goro::run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
    EXPECT_EQ(goro::run([] { return 1; }), 1);  // and the runtime is usable afterwards
}

TEST(Runtime, RunInsideGoroutineThrows) {
    goro::run([] {
        EXPECT_THROW(goro::run([] {}), goro::misuse_error);
        try {
            goro::run([] {});
        } catch (const std::logic_error& e) {
            EXPECT_NE(std::string(e.what()).find("goro::run"), std::string::npos);
        }
    });
}

TEST(Runtime, MaxprocsFollowsOptions) {
    goro::run(procs(3), [] { EXPECT_EQ(goro::maxprocs(), 3u); });
    goro::run(procs(1), [] { EXPECT_EQ(goro::maxprocs(), 1u); });
}

TEST(Runtime, MaxprocsFromEnvironment) {
    ::setenv("GORO_MAXPROCS", "5", 1);
    goro::run([] { EXPECT_EQ(goro::maxprocs(), 5u); });
    ::unsetenv("GORO_MAXPROCS");
}

TEST(Runtime, IdsAndInGoroutine) {
    EXPECT_FALSE(goro::in_goroutine());
    EXPECT_EQ(goro::this_goroutine::id(), 0u);
    goro::run([] {
        EXPECT_TRUE(goro::in_goroutine());
        EXPECT_EQ(goro::this_goroutine::id(), 1u);  // main is goroutine 1, as in Go
        std::mutex mu;
        std::set<std::uint64_t> ids;
        goro::wait_group wg;
        for (int i = 0; i < 1000; ++i)
            wg.go([&] {
                std::lock_guard lk(mu);
                ids.insert(goro::this_goroutine::id());
            });
        wg.wait();
        EXPECT_EQ(ids.size(), 1000u);
        EXPECT_EQ(ids.count(0), 0u);
        EXPECT_EQ(ids.count(1), 0u);
    });
}

TEST(Runtime, GoDecayCopiesArguments) {
    goro::run([] {
        goro::wait_group wg;
        std::atomic<int> sum{0};
        std::string s = "abc";
        wg.add(1);
        goro::go(
            [&](std::string copy, int k) {
                sum += static_cast<int>(copy.size()) + k;
                wg.done();
            },
            s, 10);
        s.clear();  // the goroutine has its own copy
        wg.wait();
        EXPECT_EQ(sum.load(), 13);
        // Move-only arguments are moved in.
        auto p = std::make_unique<int>(5);
        wg.add(1);
        goro::go(
            [&](std::unique_ptr<int> q) {
                sum += *q;
                wg.done();
            },
            std::move(p));
        wg.wait();
        EXPECT_EQ(sum.load(), 18);
    });
}

TEST(Runtime, LargeClosureIsBoxed) {
    goro::run([] {
        std::array<char, 4096> big{};
        big[4095] = 7;
        std::atomic<int> got{0};
        goro::wait_group wg;
        wg.go([big, &got] { got = big[4095]; });
        wg.wait();
        EXPECT_EQ(got.load(), 7);
    });
}

TEST(Runtime, NumGoroutinesCountsParked) {
    goro::run(procs(2), [] {
        EXPECT_EQ(goro::num_goroutines(), 1u);
        goro::wait_group gate, started;
        gate.add(1);
        for (int i = 0; i < 50; ++i) {
            started.add(1);
            goro::go([&] {
                started.done();
                gate.wait();
            });
        }
        started.wait();
        EXPECT_EQ(goro::num_goroutines(), 51u);
        gate.done();
        // They drain; poll generously.
        auto until = std::chrono::steady_clock::now() + 10s;
        while (goro::num_goroutines() > 1 && std::chrono::steady_clock::now() < until)
            goro::sleep_for(1ms);
        EXPECT_EQ(goro::num_goroutines(), 1u);
    });
}

TEST(Runtime, SleepParksForAtLeastTheDuration) {
    goro::run(procs(1), [] {
        auto t0 = goro::clock::now();
        goro::sleep_for(20ms);
        EXPECT_GE(goro::clock::now() - t0, 20ms);
        // Many sleepers on one worker: they overlap, so far less than the sum.
        goro::wait_group wg;
        t0 = goro::clock::now();
        for (int i = 0; i < 1000; ++i) wg.go([] { goro::sleep_for(50ms); });
        wg.wait();
        auto took = goro::clock::now() - t0;
        EXPECT_GE(took, 50ms);
        EXPECT_LT(took, 10s);  // generous: a hang, not a speed target
    });
}

TEST(Runtime, SleepOrderFollowsDeadlines) {
    goro::run(procs(1), [] {
        std::vector<int> order;
        std::mutex mu;
        goro::wait_group wg;
        // Absolute deadlines: however late each goroutine starts (a loaded
        // machine), timers that come due together wake in deadline order.
        const auto base = goro::clock::now();
        for (int i : {5, 1, 4, 2, 3})
            wg.go([&, i] {
                goro::sleep_until(base + std::chrono::milliseconds(10 * i));
                std::lock_guard lk(mu);
                order.push_back(i);
            });
        wg.wait();
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
    });
}

TEST(Runtime, SleepersDueTogetherWakeInDeadlineOrder) {
    // One worker kept busy past every deadline: the five timers come due in
    // one batch, and their goroutines must still run in deadline order.
    goro::run(procs(1), [] {
        std::vector<int> order;
        std::mutex mu;
        goro::wait_group started, sleepers;
        const auto base = goro::clock::now();
        started.add(5);
        for (int i : {3, 5, 1, 4, 2})
            sleepers.go([&, i] {
                started.done();  // readies main, which runs only once we park
                goro::sleep_until(base + std::chrono::milliseconds(10 + i));
                std::lock_guard lk(mu);
                order.push_back(i);
            });
        started.wait();  // every sleeper is parked on its timer now
        while (goro::clock::now() < base + std::chrono::milliseconds(40)) {
        }  // no yield: holds the only worker past every deadline
        sleepers.wait();
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
    });
}

TEST(Runtime, SleepFromPlainThreadBlocksIt) {
    auto t0 = goro::clock::now();
    goro::sleep_for(10ms);
    EXPECT_GE(goro::clock::now() - t0, 10ms);
}

TEST(Runtime, ShutdownUnwindsParkedGoroutines) {
    static std::atomic<int> destroyed{0};
    struct witness {
        ~witness() { destroyed.fetch_add(1); }
    };
    destroyed = 0;
    goro::run(procs(2), [] {
        static goro::wait_group never;
        never.add(1);
        for (int i = 0; i < 100; ++i)
            goro::go([] {
                witness w;
                never.wait();  // parked forever
            });
        for (int i = 0; i < 100; ++i)
            goro::go([] {
                witness w;
                goro::sleep_for(1h);
            });
        for (int i = 0; i < 10; ++i)
            goro::go([] {
                witness w;
                for (;;) goro::yield();  // runnable forever
            });
        goro::sleep_for(10ms);
    });
    EXPECT_EQ(destroyed.load(), 210);
    EXPECT_EQ(goro::num_goroutines(), 0u);
}

TEST(Runtime, GoFromPlainThreadStartsRuntimeLazily) {
    std::atomic<int> n{0};
    goro::wait_group wg;
    for (int i = 0; i < 100; ++i) wg.go([&] { n.fetch_add(1); });
    wg.wait();  // a plain thread blocks in wait
    EXPECT_EQ(n.load(), 100);
}

TEST(Runtime, SpawnsFromManyPlainThreads) {
    goro::run(procs(2), [] {
        std::atomic<int> n{0};
        goro::wait_group wg;
        const int per = static_cast<int>(scaled(2000));
        std::vector<std::thread> ts;
        for (int t = 0; t < 4; ++t)
            ts.emplace_back([&] {
                for (int i = 0; i < per; ++i)
                    wg.go([&] { n.fetch_add(1, std::memory_order_relaxed); });
            });
        for (auto& t : ts) t.join();
        wg.wait();
        EXPECT_EQ(n.load(), 4 * per);
    });
}

TEST(Runtime, DumpListsGoroutines) {
    // Outside run(): a goroutine may still be on its way into gate.wait()
    // when the main goroutine has returned; run() waits for every goroutine.
    goro::wait_group gate, started;
    goro::run(procs(2), [&] {
        gate.add(1);
        started.add(3);
        for (int i = 0; i < 3; ++i)
            goro::go([&] {
                started.done();
                gate.wait();
            });
        started.wait();
        goro::sleep_for(5ms);  // let them reach the park
        std::ostringstream os;
        goro::dump_goroutines(os);
        std::string s = os.str();
        EXPECT_NE(s.find("goroutine 1 [running]"), std::string::npos) << s;
        EXPECT_NE(s.find("wait_group wait"), std::string::npos) << s;
        EXPECT_NE(s.find("runtime_test.cpp"), std::string::npos) << s;
        EXPECT_NE(s.find("4 goroutine(s)"), std::string::npos) << s;
        gate.done();
    });
}

TEST_P(Scheduler, ThousandsOfGoroutinesYielding) {
    goro::run(procs(GetParam()), [] {
        const int n = static_cast<int>(scaled(5000));
        std::atomic<long> sum{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                for (int k = 0; k < 10; ++k) {
                    sum.fetch_add(i, std::memory_order_relaxed);
                    goro::yield();
                }
            });
        wg.wait();
        EXPECT_EQ(sum.load(), 10L * n * (n - 1) / 2);
    });
}

TEST_P(Scheduler, NestedSpawnTree) {
    goro::run(procs(GetParam()), [] {
        std::atomic<long> leaves{0};
        goro::wait_group wg;
        std::function<void(int)> tree = [&](int depth) {
            if (depth == 0) {
                leaves.fetch_add(1);
                return;
            }
            for (int i = 0; i < 4; ++i) wg.go([&, depth] { tree(depth - 1); });
        };
        const int depth = goro_test::sanitized ? 5 : 7;
        wg.go([&] { tree(depth); });
        wg.wait();
        EXPECT_EQ(leaves.load(), 1L << (2 * depth));
    });
}

TEST_P(Scheduler, StealingSpreadsImbalancedWork) {
    const unsigned p = GetParam();
    goro::run(procs(p), [p] {
        // One goroutine spawns CPU-bound work without ever parking: idle
        // workers must steal it. Count the distinct threads that ran it.
        std::mutex mu;
        std::set<std::thread::id> threads;
        goro::wait_group wg;
        for (int i = 0; i < 64; ++i)
            wg.go([&] {
                auto until = std::chrono::steady_clock::now() + 2ms;
                while (std::chrono::steady_clock::now() < until) {
                }
                std::lock_guard lk(mu);
                threads.insert(std::this_thread::get_id());
            });
        wg.wait();
        if (p == 1)
            EXPECT_EQ(threads.size(), 1u);
        else
            EXPECT_GE(threads.size(), 2u) << "no worker stole from the spawner";
    });
}

TEST_P(Scheduler, WakeFromPlainThreadDuringPark) {
    goro::run(procs(GetParam()), [] {
        const int rounds = static_cast<int>(scaled(2000));
        for (int i = 0; i < rounds; ++i) {
            goro::wait_group ready, go_ahead;
            go_ahead.add(1);
            ready.add(1);
            std::thread t([&] {
                go_ahead.done();  // wakes the goroutine parked below, from a plain thread
                ready.done();
            });
            go_ahead.wait();
            ready.wait();
            t.join();
        }
        SUCCEED();
    });
}

TEST_P(Scheduler, IdleWorkersDoNotBurnCpu) {
    if (goro_test::sanitized) GTEST_SKIP() << "CPU accounting is meaningless under sanitizers";
    auto cpu = [] {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    };
    // The best of up to three idle seconds: a burn shows in each of them, a
    // disturbance from outside in one (a CI run once measured 3.09 ms in a
    // single window that is 0.2-0.3 ms alone and under two CPU hogs).
    double best = 1e9;
    goro::run(procs(GetParam()), [&] {
        goro::sleep_for(20ms);  // let startup settle
        for (int i = 0; i < 3 && best >= 3.0; ++i) {
            const double before = cpu();
            goro::sleep_for(1s);
            best = std::min(best, cpu() - before);
        }
    });
    // The monitor used to look every 2 ms regardless: 4.6-6.3 ms of CPU per
    // idle second. It now sleeps deep while every worker is idle: 0.2-0.3.
    EXPECT_LT(best, 3.0) << "ms of CPU while the only goroutine slept 1 s (the best of 3)";
}
