// Tests of goro::mutex and goro::rw_mutex: mutual exclusion held across
// parks with exact counters, std lock adaptors, misuse, starvation bound,
// and reader/writer invariants.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
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
        // Two goroutines re-lock in a tight loop, holding it across a yield.
        for (int i = 0; i < 2; ++i)
            wg.go([&] {
                while (!stop) {
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

TEST(RwMutex, ReadersShareWritersExclude) {
    goro::run(procs(2), [] {
        goro::rw_mutex rw;
        std::atomic<int> readers{0}, max_readers{0};
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i)
            wg.go([&] {
                std::shared_lock lk(rw);
                int now = ++readers;
                int prev = max_readers.load();
                while (now > prev && !max_readers.compare_exchange_weak(prev, now)) {
                }
                goro::sleep_for(5ms);
                --readers;
            });
        wg.wait();
        EXPECT_GT(max_readers.load(), 1) << "readers never overlapped";
        EXPECT_TRUE(rw.try_lock());
        EXPECT_FALSE(rw.try_lock_shared());
        rw.unlock();
        EXPECT_TRUE(rw.try_lock_shared());
        EXPECT_FALSE(rw.try_lock());
        rw.unlock_shared();
    });
}

TEST(RwMutex, MisuseThrows) {
    goro::rw_mutex rw;
    EXPECT_THROW(rw.unlock(), goro::misuse_error);
    EXPECT_THROW(rw.unlock_shared(), goro::misuse_error);
}

TEST(RwMutex, WaitingWriterBlocksNewReaders) {
    goro::run(procs(2), [] {
        goro::rw_mutex rw;
        rw.lock_shared();
        std::atomic<bool> writer_in{false};
        goro::wait_group wg;
        wg.go([&] {
            std::lock_guard lk(rw);
            writer_in = true;
        });
        goro::sleep_for(5ms);  // the writer is queued now
        EXPECT_FALSE(rw.try_lock_shared()) << "a new reader overtook a waiting writer";
        EXPECT_FALSE(writer_in.load());
        rw.unlock_shared();
        wg.wait();
        EXPECT_TRUE(writer_in.load());
    });
}

TEST(RwMutexStress, InvariantUnderTheLock) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            goro::rw_mutex rw;
            long a = 0, b = 0;  // writers keep a == b
            const int n = static_cast<int>(scaled(500, 5));
            std::atomic<int> violations{0};
            goro::wait_group wg;
            for (int i = 0; i < 4; ++i)
                wg.go([&] {
                    for (int k = 0; k < n; ++k) {
                        std::lock_guard lk(rw);
                        ++a;
                        if (k % 7 == 0) goro::yield();
                        ++b;
                    }
                });
            for (int i = 0; i < 8; ++i)
                wg.go([&] {
                    for (int k = 0; k < n; ++k) {
                        std::shared_lock lk(rw);
                        if (a != b) violations.fetch_add(1);
                        if (k % 5 == 0) goro::yield();
                    }
                });
            wg.wait();
            EXPECT_EQ(violations.load(), 0);
            EXPECT_EQ(a, 4L * n);
        });
}
