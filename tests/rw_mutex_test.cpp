// Tests of goro::rw_mutex: readers share, writers exclude, a waiting writer
// blocks new readers, misuse, and a reader/writer invariant checked under
// the lock. Includes its header first: it must stand alone.
#include "goro/rw_mutex.hpp"

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
        // Wait until the writer is queued (try_lock fails while it waits
        // only because a reader holds the lock; the writer's arrival is what
        // must then block new readers).
        goro::sleep_for(5ms);
        for (int i = 0; i < 5000 && rw.try_lock_shared(); ++i) {
            rw.unlock_shared();
            goro::sleep_for(1ms);
        }
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

TEST(RwMutex, ReadersQueuedBehindAWriterAllGetInWhenItUnlocks) {
    goro::run(procs(2), [] {
        goro::rw_mutex rw;
        rw.lock();
        std::atomic<int> readers_in{0};
        auto release = goro::make_chan<goro::unit>();
        goro::wait_group wg;
        for (int i = 0; i < 5; ++i)
            wg.go([&] {
                std::shared_lock lk(rw);
                readers_in.fetch_add(1);
                release.recv();  // all five hold it at once
            });
        goro::sleep_for(2ms);
        EXPECT_EQ(readers_in.load(), 0);
        rw.unlock();
        for (int i = 0; i < 5000 && readers_in.load() < 5; ++i) goro::sleep_for(1ms);
        EXPECT_EQ(readers_in.load(), 5);
        EXPECT_FALSE(rw.try_lock());
        release.close();
        wg.wait();
        EXPECT_TRUE(rw.try_lock());
        rw.unlock();
    });
}

TEST(RwMutexStress, PlainThreadsAndGoroutines) {
    goro::run(procs(2), [] {
        goro::rw_mutex rw;
        long a = 0, b = 0;
        std::atomic<int> violations{0};
        const int n = static_cast<int>(scaled(3000));
        goro::wait_group wg;
        auto writer = [&] {
            for (int k = 0; k < n; ++k) {
                std::unique_lock lk(rw);
                ++a;
                ++b;
            }
        };
        auto reader = [&] {
            for (int k = 0; k < n; ++k) {
                std::shared_lock lk(rw);
                if (a != b) violations.fetch_add(1);
            }
        };
        wg.go(writer);
        wg.go(reader);
        std::thread t1(writer), t2(reader);
        t1.join();
        t2.join();
        wg.wait();
        EXPECT_EQ(violations.load(), 0);
        EXPECT_EQ(a, 2L * n);
        EXPECT_EQ(b, 2L * n);
    });
}
