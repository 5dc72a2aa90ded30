// Shutdown by protocol: a goroutine is unwound only after its park has fully
// finished; blocking calls made by destructors during unwinding never
// terminate (they wait as usual; what cannot finish is abandoned and
// reported); wait_group::wait waits for the goroutines it joins.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

std::atomic<int> destroyed{0};
struct witness {
    ~witness() { destroyed.fetch_add(1); }
};

}  // namespace

// A park racing the shutdown scan: run() returns while goroutines are in the
// middle of parking (sleep_until's unlock callback inserts a timer node that
// lives in the goroutine's frame). Shutdown must not unwind one before that
// insert is done (it crashed in the timer heap about 1 run in 40).
TEST(ShutdownProtocol, ParkRacingTheScan) {
    const int runs = static_cast<int>(scaled(400, 4));
    for (int r = 0; r < runs; ++r) {
        destroyed = 0;
        const unsigned p = 1u + static_cast<unsigned>(r % 3);
        goro::run(procs(p), [r] {
            for (int i = 0; i < 20; ++i)
                goro::go([] {
                    witness w;
                    goro::sleep_until(goro::clock::now() + 1h);
                });
            // Return while they are still spawning and parking.
            if (r % 2) goro::yield();
        });
        ASSERT_EQ(destroyed.load(), 20) << "run " << r;
        ASSERT_EQ(goro::num_goroutines(), 0u);
    }
}

// The same race with every kind of park that unwinds at once (channels,
// select, cond; a mutex held until the run body returns), on 2 and 8
// workers: every goroutine is unwound exactly once, nothing crashes.
TEST(ShutdownProtocol, EveryKindOfParkRacingTheScan) {
    const int runs = static_cast<int>(scaled(200, 4));
    goro::mutex held;
    for (int r = 0; r < runs; ++r) {
        destroyed = 0;
        auto ch = goro::make_chan<int>();
        auto full = goro::make_chan<int>(1);
        full.send(0);
        goro::mutex cm;
        goro::cond cv(cm);
        goro::run(procs(r % 2 ? 2 : 8), [&] {
            std::lock_guard lk(held);
            for (int i = 0; i < 6; ++i) {
                goro::go([&] {
                    witness w;
                    ch.recv();
                });
                goro::go([&] {
                    witness w;
                    full.send(1);
                });
                goro::go([&] {
                    witness w;
                    goro::select(goro::recv_case(ch), goro::recv_case(goro::after(1h)));
                });
                goro::go([&] {
                    witness w;
                    std::lock_guard lk2(held);
                });
                goro::go([&] {
                    witness w;
                    std::unique_lock lk2(cm);
                    cv.wait(lk2);
                });
            }
        });
        ASSERT_EQ(destroyed.load(), 30) << "run " << r;
    }
}

// An RAII join in a destructor: the goroutine is unwound, its destructor
// waits for the goroutines it started, which are unwound too and call done().
// Before: goroutine_unwind thrown from the noexcept destructor: terminate.
TEST(ShutdownProtocol, RaiiJoinInADestructorAtShutdown) {
    destroyed = 0;
    std::atomic<int> joined{0};
    goro::run(procs(2), [&] {
        for (int i = 0; i < 10; ++i)
            goro::go([&] {
                struct joiner {
                    goro::wait_group wg;
                    std::atomic<int>& joined;
                    ~joiner() {
                        wg.wait();  // blocks while the workers unwind
                        joined.fetch_add(1);
                    }
                } j{{}, joined};
                auto never = goro::make_chan<int>();
                for (int k = 0; k < 3; ++k)
                    j.wg.go([never] {
                        witness w;
                        never.recv();
                    });
                never.recv();
            });
        goro::sleep_for(10ms);
    });
    EXPECT_EQ(joined.load(), 10);
    EXPECT_EQ(destroyed.load(), 30);
    EXPECT_EQ(goro::num_goroutines(), 0u);
}

// A contended mutex locked in a destructor during unwinding: it is held by
// another goroutine that is itself unwound (its lock_guard releases it).
TEST(ShutdownProtocol, ContendedMutexInADestructorAtShutdown) {
    goro::mutex m;
    std::atomic<int> locked_in_dtor{0};
    goro::run(procs(2), [&] {
        auto never = goro::make_chan<int>();
        goro::go([&, never] {
            std::lock_guard lk(m);
            never.recv();  // holds m until unwound
        });
        goro::sleep_for(2ms);
        for (int i = 0; i < 5; ++i)
            goro::go([&, never] {
                struct locker {
                    goro::mutex& m;
                    std::atomic<int>& n;
                    ~locker() {
                        std::lock_guard lk(m);
                        n.fetch_add(1);
                    }
                } l{m, locked_in_dtor};
                never.recv();
            });
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(locked_in_dtor.load(), 5);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
}

// A send in a destructor that nobody will ever receive: the goroutine is
// abandoned (reported on stderr, never resumed); run() returns, and the
// next run works.
TEST(ShutdownProtocol, HopelessBlockInADestructorIsAbandoned) {
    testing::internal::CaptureStderr();
    // Outlives the abandoned goroutine, whose frame (in a leaked stack) still
    // refers to it; reachable from here, so LeakSanitizer is content.
    static auto* nobody_ptr = new goro::chan<int>(goro::make_chan<int>());
    static goro::chan<int>& nobody = *nobody_ptr;
    goro::run(procs(2), [] {
        goro::go([] {
            struct sender {
                ~sender() { nobody.send(1); }
            } s;
            goro::select();  // blocks forever: unwound at shutdown
        });
        goro::sleep_for(2ms);
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("abandoning goroutine"), std::string::npos) << err;
    EXPECT_NE(err.find("chan send"), std::string::npos) << err;
    EXPECT_EQ(goro::num_goroutines(), 0u);
    std::ostringstream dump;
    goro::dump_goroutines(dump);
    EXPECT_NE(dump.str().find("abandoned at shutdown]: chan 0x"), std::string::npos) << dump.str();
    int v = 0;
    goro::run(procs(2), [&] {
        goro::go([] { nobody.send(5); });
        v = *nobody.recv();
    });
    EXPECT_EQ(v, 5);
}

// wait_group::wait at shutdown waits for the count to reach zero before it
// unwinds, so the goroutines it waits for never touch a destroyed
// wait_group (the header's `wait_group wg; wg.go(..); wg.wait();` idiom).
TEST(ShutdownProtocol, WaitGroupOnTheStackOutlivesItsGoroutines) {
    destroyed = 0;
    goro::run(procs(2), [] {
        for (int i = 0; i < 20; ++i)
            goro::go([] {
                witness w;
                goro::wait_group wg;  // dies when this goroutine unwinds
                auto never = goro::make_chan<int>();
                for (int k = 0; k < 4; ++k)
                    wg.go([never] {
                        witness w2;
                        never.recv();
                    });
                wg.wait();
            });
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(destroyed.load(), 20 * 5);
}

// A wait_group whose counter never reaches zero still unwinds at shutdown
// (once nothing else is left that could call done()).
TEST(ShutdownProtocol, WaitGroupThatNeverReachesZeroStillUnwinds) {
    destroyed = 0;
    goro::wait_group never;
    never.add(1);
    goro::run(procs(2), [&] {
        for (int i = 0; i < 10; ++i)
            goro::go([&] {
                witness w;
                never.wait();
            });
        goro::sleep_for(2ms);
    });
    EXPECT_EQ(destroyed.load(), 10);
    EXPECT_EQ(never.count(), 1);
}

// A goroutine that catches everything (swallowing the unwind) unwinds
// again at its next blocking call.
TEST(ShutdownProtocol, SwallowedUnwindIsRaisedAgain) {
    std::atomic<int> caught{0};
    goro::run(procs(2), [&] {
        goro::go([&] {
            witness w;
            for (int i = 0; i < 3; ++i) {
                try {
                    goro::select();
                } catch (...) {
                    caught.fetch_add(1);
                }
            }
            goro::select();  // and once more, uncaught
        });
        goro::sleep_for(2ms);
    });
    EXPECT_EQ(caught.load(), 3);
}

// Stealing during shutdown: many runnable goroutines queued on a worker when
// run() returns; thieves and the unwinding race.
TEST(ShutdownProtocol, StealingDuringShutdown) {
    const int runs = static_cast<int>(scaled(100, 4));
    for (int r = 0; r < runs; ++r) {
        destroyed = 0;
        goro::run(procs(4), [] {
            for (int i = 0; i < 300; ++i)
                goro::go([] {
                    witness w;
                    for (int k = 0; k < 3; ++k) goro::yield();
                    goro::select();
                });
        });
        ASSERT_EQ(destroyed.load(), 300) << "run " << r;
    }
}

// Found by the soak program: a destructor entered by a normal scope exit (no
// exception in flight) while run() shuts down. wait_group::wait and the
// lock-like waits (mutex, rw_mutex, semaphore, once) wait through shutdown
// and return normally, so an RAII joiner or locker in such a destructor
// completes instead of throwing out of it (std::terminate).
TEST(ShutdownProtocol, JoinerDestructorAtANormalScopeExit) {
    std::atomic<int> joined{0};
    goro::run(procs(2), [&] {
        goro::go([&] {
            struct joiner {
                goro::wait_group wg;
                std::atomic<int>& joined;
                ~joiner() {
                    wg.wait();
                    joined.fetch_add(1);
                }
            } j{{}, joined};
            j.wg.go([] { goro::select(); });  // blocks until shutdown unwinds it
        });                                   // a normal scope exit: ~joiner waits
        goro::sleep_for(5ms);                 // run() shuts down while ~joiner waits
    });
    EXPECT_EQ(joined.load(), 1);
    EXPECT_EQ(goro::num_goroutines(), 0u);
}

TEST(ShutdownProtocol, MutexLockInADestructorAtANormalScopeExit) {
    goro::mutex m;
    std::atomic<int> locked{0};
    goro::run(procs(2), [&] {
        goro::go([&] {
            std::lock_guard lk(m);
            goro::select();  // holds m until unwound
        });
        goro::sleep_for(2ms);
        goro::go([&] {
            struct locker {
                goro::mutex& m;
                std::atomic<int>& n;
                ~locker() {
                    std::lock_guard lk(m);
                    n.fetch_add(1);
                }
            } l{m, locked};
        });  // a normal scope exit: ~locker parks on m
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(locked.load(), 1);
}

// A retry loop that swallows the unwind for good (catch (...) around a
// blocking call, forever) kept run() from returning: every blocking call
// raised the unwind again and the loop caught it again. After 0.5 s without
// an exit, shutdown abandons it at its next blocking call, reporting it by
// id and creation site. Its witness is never destroyed (its stack is
// leaked); a well-behaved goroutine beside it unwinds as usual.
TEST(ShutdownProtocol, RetryLoopSwallowingTheUnwindIsAbandoned) {
    destroyed = 0;
    std::atomic<long> swallowed{0};
    const auto t0 = std::chrono::steady_clock::now();
    ::testing::internal::CaptureStderr();
    goro::run(procs(2), [&] {
        auto never = goro::make_chan<int>();
        goro::go([never, &swallowed] {
            witness leaked;
            for (;;) {
                try {
                    never.recv();
                } catch (...) {
                    swallowed.fetch_add(1);
                }
            }
        });
        goro::go([never] {
            witness w;
            never.recv();
        });
        goro::sleep_for(2ms);
    });
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "run() took too long to return";
    EXPECT_EQ(destroyed.load(), 1) << "the well-behaved goroutine unwinds; the swallower is "
                                      "abandoned, its witness never destroyed";
    EXPECT_GT(swallowed.load(), 1);
    EXPECT_NE(err.find("abandoning goroutine"), std::string::npos) << err;
    EXPECT_NE(err.find("shutdown_protocol_test.cpp"), std::string::npos) << err;
    EXPECT_NE(err.find("goro::goroutine_exit"), std::string::npos) << err;
}

// The public name of the unwind: rethrowing it from a catch-all retry loop
// lets the goroutine unwind normally (nothing abandoned, nothing printed).
TEST(ShutdownProtocol, RetryLoopRethrowingGoroutineExitUnwinds) {
    destroyed = 0;
    ::testing::internal::CaptureStderr();
    goro::run(procs(2), [&] {
        auto never = goro::make_chan<int>();
        goro::go([never] {
            witness w;
            for (;;) {
                try {
                    never.recv();
                } catch (const goro::goroutine_exit&) {
                    throw;
                } catch (...) {
                }
            }
        });
        goro::sleep_for(2ms);
    });
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(destroyed.load(), 1);
    EXPECT_EQ(err.find("abandoning"), std::string::npos) << err;
}
