// Tests of goro::mutex: mutual exclusion held across parks with exact
// counters, std lock adaptors, misuse, the starvation bound, plain threads.
// (goro::rw_mutex: rw_mutex_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Mutex, WorksWithStdLockAdaptors) {
    goro::mutex a, b;
    {
        std::lock_guard lk(a);
        EXPECT_FALSE(a.try_lock());
    }
    EXPECT_TRUE(a.try_lock());
    a.unlock();
    {
        std::unique_lock lk(a);
        EXPECT_TRUE(lk.owns_lock());
    }
    {
        std::scoped_lock lk(a, b);
        EXPECT_FALSE(b.try_lock());
    }
    EXPECT_TRUE(b.try_lock());
    b.unlock();
}

TEST(Mutex, UnlockOfUnlockedThrows) {
    goro::mutex m;
    try {
        m.unlock();
        FAIL() << "no throw";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("goro::mutex::unlock"), std::string::npos);
    }
}

class MutexStress : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, MutexStress, ::testing::Values(1u, 2u, 8u));

TEST_P(MutexStress, ThousandGoroutinesHoldItAcrossParks) {
    goro::run(procs(GetParam()), [] {
        goro::mutex m;
        long counter = 0;  // plain: only the mutex protects it
        int inside = 0;
        const int n = static_cast<int>(scaled(1000, 5));
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&] {
                for (int k = 0; k < 5; ++k) {
                    std::lock_guard lk(m);
                    EXPECT_EQ(++inside, 1);
                    long v = counter;
                    goro::yield();  // park while holding it
                    counter = v + 1;
                    --inside;
                }
            });
        wg.wait();
        EXPECT_EQ(counter, 5L * n);
    });
}

TEST(MutexStress, PlainThreadsAndGoroutinesShareIt) {
    goro::run(procs(2), [] {
        goro::mutex m;
        long counter = 0;
        const int per = static_cast<int>(scaled(20000));
        goro::wait_group wg;
        for (int i = 0; i < 4; ++i)
            wg.go([&] {
                for (int k = 0; k < per; ++k) {
                    std::lock_guard lk(m);
                    ++counter;
                }
            });
        std::vector<std::thread> ts;
        for (int i = 0; i < 2; ++i)
            ts.emplace_back([&] {
                for (int k = 0; k < per; ++k) {
                    std::lock_guard lk(m);
                    ++counter;
                }
            });
        for (auto& t : ts) t.join();
        wg.wait();
        EXPECT_EQ(counter, 6L * per);
    });
}

TEST(MutexStress, WaiterIsNotStarvedByABarger) {
    goro::run(procs(2), [] {
        goro::mutex m;
        std::atomic<bool> stop{false};
        goro::wait_group wg;
        // Two goroutines re-lock in a tight loop, holding it across a yield
        // (for 10 s at most, so that a starving waiter fails, not hangs).
        auto give_up = goro::clock::now() + 10s;
        for (int i = 0; i < 2; ++i)
            wg.go([&] {
                while (!stop && goro::clock::now() < give_up) {
                    std::lock_guard lk(m);
                    goro::yield();
                }
            });
        goro::sleep_for(5ms);
        auto t0 = goro::clock::now();
        {
            std::lock_guard lk(m);  // must get through despite the loopers
        }
        auto waited = goro::clock::now() - t0;
        stop = true;
        wg.wait();
        EXPECT_LT(waited, 2s) << "starvation mode did not hand the lock over";
    });
}

TEST(Mutex, HeldAcrossSleepsAndChannelOps) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            goro::mutex m;
            auto ch = goro::make_chan<int>(1);
            int counter = 0;
            const int n = static_cast<int>(scaled(200, 4));
            goro::wait_group wg;
            for (int i = 0; i < n; ++i)
                wg.go([&] {
                    std::lock_guard lk(m);
                    int v = counter;
                    goro::sleep_for(20us);  // parked on a timer while holding it
                    ch.send(v);
                    counter = *ch.recv() + 1;
                });
            wg.wait();
            EXPECT_EQ(counter, n);
        });
}

TEST(Mutex, AnotherGoroutineMayUnlock) {
    goro::run(procs(2), [] {
        goro::mutex m;
        m.lock();
        auto done = goro::make_chan<goro::unit>();
        goro::go([&] {
            m.unlock();  // as in Go: not tied to the locker
            done.close();
        });
        done.recv();
        EXPECT_TRUE(m.try_lock());
        m.unlock();
        EXPECT_THROW(m.unlock(), goro::misuse_error);
    });
}

TEST(Mutex, TryLockFailsWhileHeldElsewhereAndWaitersGetIn) {
    goro::run(procs(2), [] {
        goro::mutex m;
        m.lock();
        std::atomic<int> in{0};
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i)
            wg.go([&] {
                std::lock_guard lk(m);
                in.fetch_add(1);
            });
        goro::sleep_for(2ms);
        EXPECT_EQ(in.load(), 0);
        std::thread t([&] { EXPECT_FALSE(m.try_lock()); });
        t.join();
        m.unlock();
        wg.wait();
        EXPECT_EQ(in.load(), 8);
    });
}

TEST(MutexStress, PlainThreadsOnlyNoRuntime) {
    goro::mutex m;
    long counter = 0;
    const int per = static_cast<int>(scaled(20000));
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            for (int k = 0; k < per; ++k) {
                std::unique_lock lk(m);
                long v = counter;
                if (k % 512 == 0) std::this_thread::yield();
                counter = v + 1;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(counter, 4L * per);
}

TEST(MutexStress, PlainThreadWaiterGetsInAmongGoroutineLoopers) {
    // A plain thread (parked on a futex, slow to wake next to a goroutine
    // re-locking) gets in round after round while goroutines hammer it.
    goro::run(procs(2), [] {
        goro::mutex m;
        std::atomic<bool> stop{false};
        auto give_up = goro::clock::now() + 10s;  // fail, do not hang, if starved
        goro::wait_group wg;
        for (int i = 0; i < 2; ++i)
            wg.go([&] {
                while (!stop && goro::clock::now() < give_up) {
                    std::lock_guard lk(m);
                    goro::yield();
                }
            });
        auto finished = goro::make_chan<goro::clock::duration>(1);
        std::thread t([&] {
            goro::clock::duration worst{};
            for (int r = 0; r < 50; ++r) {
                auto t0 = goro::clock::now();
                { std::lock_guard lk(m); }
                worst = std::max(worst, goro::clock::now() - t0);
            }
            stop = true;
            finished.send(worst);
        });
        auto worst = finished.recv();  // parks this goroutine, not its worker
        t.join();
        wg.wait();
        EXPECT_LT(*worst, 2s) << "a plain-thread waiter starved behind goroutines";
    });
}
