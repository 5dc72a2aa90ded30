// Hostile tests of commit 35bd0e9: in a bubble (goro::testing::bubble) the
// virtual clock stands still once run()'s main (the bubble's fn) has
// returned or thrown; in the shutdown that follows it moves only while no
// left goroutine is about to be unwound (claimed, or readied and not yet
// queued: scheduler::an_unwind_is_pending); goro::exit in fn lets the
// others run on with the clock moving (docs/debugging.md, testing.hpp).
//
// Every test bounds its time with a watchdog (tests/watchdog.hpp): a hang
// ends the process with status 1, which fails the test under ctest.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/testing.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::scaled;
using goro_test::watchdog;

namespace {

using tp = goro::clock::time_point;

// A destructor that sleeps d (virtual) while its goroutine unwinds, and
// records when it began and ended.
struct sleeping_cleanup {
    goro::clock::duration d;
    std::atomic<int>& done;
    std::atomic<std::int64_t>* slept_ns = nullptr;
    ~sleeping_cleanup() {
        const tp t0 = goro::now();
        goro::sleep_for(d);
        if (slept_ns) slept_ns->store((goro::now() - t0).count());
        done.fetch_add(1);
    }
};

// A goroutine left sleeping an hour when fn returns, whose unwinding sleeps d.
void spawn_left_sleeper_with_sleeping_cleanup(goro::clock::duration d, std::atomic<int>& done,
                                              std::atomic<int>& woke,
                                              std::atomic<std::int64_t>* slept_ns = nullptr) {
    goro::go([d, &done, &woke, slept_ns] {
        sleeping_cleanup c{d, done, slept_ns};
        goro::sleep_for(1h);
        woke.fetch_add(1);  // only if the clock moved after fn returned
    });
}

}  // namespace

// fn throws while goroutines sleep: they are unwound (their destructors
// run), never woken by their timers, and the exception reaches the caller.
TEST(Break23Bubble, FnThrowsWhileGoroutinesSleep) {
    watchdog dog("FnThrowsWhileGoroutinesSleep", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(40, 4)); ++round) {
        std::atomic<int> woke{0}, unwound{0};
        std::optional<goro::context> kept;
        try {
            goro::testing::bubble([&] {
                auto [ctx, cancel] = goro::with_timeout(goro::background(), 30s);
                kept = ctx;
                for (int k = 0; k < 8; ++k)
                    goro::go([&, k] {
                        struct guard {
                            std::atomic<int>& n;
                            ~guard() { n.fetch_add(1); }
                        } g{unwound};
                        goro::sleep_for(std::chrono::seconds(1 + k));
                        woke.fetch_add(1);
                    });
                goro::testing::wait();
                throw std::runtime_error("fn threw");
            });
            ADD_FAILURE() << "bubble did not rethrow";
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "fn threw");
        }
        ASSERT_EQ(woke.load(), 0) << "round " << round << ": a sleeper woke after fn threw";
        ASSERT_EQ(unwound.load(), 8) << "round " << round;
        ASSERT_TRUE(kept.has_value());
        EXPECT_FALSE(kept->done().try_recv().closed())
            << "round " << round << ": the kept context's 30 s deadline fired";
        dog.pet();
    }
}

// While fn's own locals are destroyed by its exception, fn has not returned
// yet: the clock still moves, both for fn's destructor that sleeps and for
// the other goroutines (one due before that destructor's wake wakes normally).
TEST(Break23Bubble, FnsOwnDestructorSleepsWhileItsExceptionUnwinds) {
    watchdog dog("FnsOwnDestructorSleepsWhileItsExceptionUnwinds", std::chrono::seconds(60));
    std::atomic<int> woke{0}, done{0};
    std::atomic<std::int64_t> slept{0};
    EXPECT_THROW(goro::testing::bubble([&] {
                     goro::go([&] {
                         goro::sleep_for(1min);
                         woke.fetch_add(1);
                     });
                     sleeping_cleanup c{2min, done, &slept};
                     throw std::logic_error("thrown with a sleeping destructor");
                 }),
                 std::logic_error);
    EXPECT_EQ(done.load(), 1);
    EXPECT_EQ(slept.load(), std::chrono::nanoseconds(2min).count());
    EXPECT_EQ(woke.load(), 1) << "fn had not returned yet: the 1 min sleeper is due";
}

// Destructors that wait on time while their goroutine is unwound by the
// bubble's shutdown: a select with an after() timeout, a timer, a ticker, an
// after_func, a context deadline. Each must end (the clock moves for them),
// on the virtual clock's exact time.
TEST(Break23Bubble, DestructorsWaitingOnTimersInTheShutdownComplete) {
    watchdog dog("DestructorsWaitingOnTimersInTheShutdownComplete", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(20, 4)); ++round) {
        std::atomic<int> woke{0};
        std::atomic<int> sel{0}, tim{0}, tick{0}, af{0}, ctxd{0};
        std::atomic<std::int64_t> sel_ns{-1}, tim_ns{-1}, tick_ns{-1}, af_ns{-1}, ctx_ns{-1};
        goro::testing::bubble([&] {
            auto never = goro::make_chan<int>();
            auto left = [&woke](auto cleanup) {
                goro::go([&woke, cleanup] {
                    struct run_at_unwind {
                        decltype(cleanup) f;
                        ~run_at_unwind() { f(); }
                    } r{cleanup};
                    goro::sleep_for(1h);
                    woke.fetch_add(1);
                });
            };
            left([&, never] {
                const tp t0 = goro::now();
                goro::select(goro::recv_case(never, [](std::optional<int>) {}),
                             goro::recv_case(goro::after(5s), [&](auto) { sel.fetch_add(1); }));
                sel_ns = (goro::now() - t0).count();
            });
            left([&] {
                const tp t0 = goro::now();
                goro::timer t(3s);
                if (t.c().recv()) tim.fetch_add(1);
                tim_ns = (goro::now() - t0).count();
            });
            left([&] {
                const tp t0 = goro::now();
                goro::ticker k(1s);
                for (int i = 0; i < 3; ++i)
                    if (k.c().recv()) tick.fetch_add(1);
                tick_ns = (goro::now() - t0).count();
            });
            left([&] {
                const tp t0 = goro::now();
                auto fired = goro::make_chan<int>(1);
                goro::after_func(2s, [fired] { fired.send(1); });
                if (fired.recv()) af.fetch_add(1);
                af_ns = (goro::now() - t0).count();
            });
            left([&] {
                const tp t0 = goro::now();
                auto [ctx, cancel] = goro::with_timeout(goro::background(), 4s);
                (void)ctx.done().recv();
                if (ctx.err() == goro::errc::deadline_exceeded) ctxd.fetch_add(1);
                ctx_ns = (goro::now() - t0).count();
                cancel();
            });
            goro::testing::wait();
        });
        ASSERT_EQ(woke.load(), 0) << "round " << round;
        ASSERT_EQ(sel.load(), 1) << "round " << round;
        ASSERT_EQ(tim.load(), 1) << "round " << round;
        ASSERT_EQ(tick.load(), 3) << "round " << round;
        ASSERT_EQ(af.load(), 1) << "round " << round;
        ASSERT_EQ(ctxd.load(), 1) << "round " << round;
        // Run one after another or side by side, each waits its own span.
        EXPECT_EQ(sel_ns.load(), std::chrono::nanoseconds(5s).count());
        EXPECT_EQ(tim_ns.load(), std::chrono::nanoseconds(3s).count());
        EXPECT_EQ(tick_ns.load(), std::chrono::nanoseconds(3s).count());
        EXPECT_EQ(af_ns.load(), std::chrono::nanoseconds(2s).count());
        EXPECT_EQ(ctx_ns.load(), std::chrono::nanoseconds(4s).count());
        dog.pet();
    }
}

// A destructor that waits (wait_group, mutex) during the shutdown for
// another goroutine's destructor, which sleeps first.
TEST(Break23Bubble, DestructorWaitsInTheShutdownForAnotherDestructorsSleep) {
    watchdog dog("DestructorWaitsInTheShutdownForAnotherDestructorsSleep",
                 std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(20, 4)); ++round) {
        std::atomic<int> woke{0}, wg_waited{0}, locked{0}, sleeper_done{0};
        std::atomic<std::int64_t> wg_wait_ns{-1};
        goro::wait_group wg;
        goro::mutex m;
        goro::testing::bubble([&] {
            wg.add(1);
            // Sleeps 1 min in its unwinding, then lets the waiter go.
            goro::go([&] {
                struct done_late {
                    goro::wait_group& wg;
                    std::atomic<int>& n;
                    ~done_late() {
                        goro::sleep_for(1min);
                        n.fetch_add(1);
                        wg.done();
                    }
                } d{wg, sleeper_done};
                goro::sleep_for(1h);
                woke.fetch_add(1);
            });
            // Waits for it in its own unwinding.
            goro::go([&] {
                struct waiter {
                    goro::wait_group& wg;
                    std::atomic<int>& n;
                    std::atomic<std::int64_t>& ns;
                    ~waiter() {
                        const tp t0 = goro::now();
                        wg.wait();
                        ns = (goro::now() - t0).count();
                        n.fetch_add(1);
                    }
                } w{wg, wg_waited, wg_wait_ns};
                goro::sleep_for(2h);
                woke.fetch_add(1);
            });
            // Holds the mutex across a 30 s sleep in its unwinding; another
            // locks it in its own.
            goro::go([&] {
                struct holder {
                    goro::mutex& m;
                    ~holder() {
                        m.lock();
                        goro::sleep_for(30s);
                        m.unlock();
                    }
                } h{m};
                goro::sleep_for(3h);
                woke.fetch_add(1);
            });
            goro::go([&] {
                struct locker {
                    goro::mutex& m;
                    std::atomic<int>& n;
                    ~locker() {
                        m.lock();
                        n.fetch_add(1);
                        m.unlock();
                    }
                } l{m, locked};
                goro::sleep_for(4h);
                woke.fetch_add(1);
            });
            goro::testing::wait();
        });
        ASSERT_EQ(woke.load(), 0) << "round " << round;
        ASSERT_EQ(sleeper_done.load(), 1) << "round " << round;
        ASSERT_EQ(wg_waited.load(), 1) << "round " << round;
        ASSERT_EQ(locked.load(), 1) << "round " << round;
        // The waiter's unwinding ran before the sleeper's ended, or after.
        EXPECT_LE(wg_wait_ns.load(), std::chrono::nanoseconds(1min).count()) << "round " << round;
        EXPECT_GE(wg_wait_ns.load(), 0) << "round " << round;
        dog.pet();
    }
}

// goro::exit in fn: the others go on with a moving clock — they sleep,
// spawn more sleepers, wait on context deadlines, tickers, after_func —
// each on the exact virtual time; bubble returns when the last one ends.
TEST(Break23Bubble, ExitInMainOthersSleepSpawnAndMeetDeadlines) {
    watchdog dog("ExitInMainOthersSleepSpawnAndMeetDeadlines", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(20, 4)); ++round) {
        std::atomic<int> ends{0}, af{0}, deadline{0}, ticks{0}, bad_time{0};
        tp t0{};
        // Outside fn: goro::exit unwinds fn's frame while the others run.
        auto at = [&](goro::clock::duration want) {
            if (goro::now() - t0 != want) bad_time.fetch_add(1);
        };
        goro::testing::bubble([&] {
            t0 = goro::now();
            goro::go([&] {
                goro::sleep_for(1min);
                at(1min);
                // Spawns sleepers that spawn sleepers.
                for (int i = 1; i <= 3; ++i)
                    goro::go([&, i] {
                        goro::sleep_for(i * 1min);
                        at(1min + i * 1min);
                        goro::go([&, i] {
                            goro::sleep_for(i * 10min);
                            at(1min + i * 11min);
                            ends.fetch_add(1);
                        });
                        ends.fetch_add(1);
                    });
                ends.fetch_add(1);
            });
            goro::go([&] {
                auto [ctx, cancel] = goro::with_timeout(goro::background(), 5min);
                (void)ctx.done().recv();
                at(5min);
                if (ctx.err() == goro::errc::deadline_exceeded) deadline.fetch_add(1);
                cancel();
                ends.fetch_add(1);
            });
            goro::go([&] {
                goro::ticker k(7min);
                for (int i = 1; i <= 4; ++i) {
                    (void)k.c().recv();
                    at(i * 7min);
                    ticks.fetch_add(1);
                }
                ends.fetch_add(1);
            });
            goro::go([&] {
                auto ch = goro::make_chan<int>(1);
                goro::after_func(3min, [&, ch] {
                    at(3min);
                    af.fetch_add(1);
                    ch.send(1);
                });
                (void)ch.recv();
                ends.fetch_add(1);
            });
            goro::exit();
        });
        ASSERT_EQ(bad_time.load(), 0) << "round " << round << ": a wake on the wrong virtual time";
        ASSERT_EQ(ends.load(), 1 + 3 + 3 + 1 + 1 + 1) << "round " << round;
        ASSERT_EQ(af.load(), 1) << "round " << round;
        ASSERT_EQ(deadline.load(), 1) << "round " << round;
        ASSERT_EQ(ticks.load(), 4) << "round " << round;
        dog.pet();
    }
}

// goro::exit in fn, and then what is left deadlocks after a timer: the
// sleeper wakes (the clock moves), then the deadlock is reported.
TEST(Break23Bubble, ExitInMainThenTheOthersDeadlockAfterATimer) {
    watchdog dog("ExitInMainThenTheOthersDeadlockAfterATimer", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(10, 2)); ++round) {
        std::atomic<int> woke{0}, unwound{0};
        bool reported = false;
        try {
            goro::testing::bubble([&] {
                goro::go([&] {
                    struct guard {
                        std::atomic<int>& n;
                        ~guard() { n.fetch_add(1); }
                    } g{unwound};
                    goro::sleep_for(1h);
                    woke.fetch_add(1);
                    auto never = goro::make_chan<int>();
                    (void)never.recv();
                });
                goro::exit();
            });
        } catch (const goro::deadlock_error& e) {
            reported = true;
            EXPECT_NE(std::string(e.what()).find("chan receive"), std::string::npos) << e.what();
        }
        ASSERT_TRUE(reported) << "round " << round;
        ASSERT_EQ(woke.load(), 1) << "round " << round;
        ASSERT_EQ(unwound.load(), 1) << "round " << round;
        dog.pet();
    }
}

// A real deadlock with timers pending first (they fire: a pending timer is
// no deadlock), then main's destructor sleeps in the deadlock's shutdown:
// it must end, 10 virtual minutes on, and deadlock_error be thrown.
TEST(Break23Bubble, DeadlockAfterPendingTimersThenMainsDestructorSleeps) {
    watchdog dog("DeadlockAfterPendingTimersThenMainsDestructorSleeps", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(10, 2)); ++round) {
        std::atomic<int> done{0}, fired{0};
        std::atomic<std::int64_t> slept{0};
        std::optional<goro::context> kept;
        bool reported = false;
        try {
            goro::testing::bubble([&] {
                auto [ctx, cancel] = goro::with_timeout(goro::background(), 2h);
                kept = ctx;
                goro::timer unread(1h);  // fires into a channel nobody reads
                goro::after_func(30min, [&] { fired.fetch_add(1); });
                sleeping_cleanup c{10min, done, &slept};
                auto never = goro::make_chan<int>();
                (void)never.recv();
            });
        } catch (const goro::deadlock_error&) {
            reported = true;
        }
        ASSERT_TRUE(reported) << "round " << round;
        EXPECT_EQ(fired.load(), 1) << "round " << round;
        EXPECT_EQ(done.load(), 1) << "round " << round;
        EXPECT_EQ(slept.load(), std::chrono::nanoseconds(10min).count()) << "round " << round;
        ASSERT_TRUE(kept.has_value());
        // The deadlock came at 2 h (the context's own deadline is a pending
        // timer too); the destructor's 10 min then pass in the shutdown.
        EXPECT_TRUE(kept->done().try_recv().closed()) << "round " << round;
        dog.pet();
    }
}

// Contexts, timers and after_func timers kept from a bubble never fire
// after it, when fn simply returns.
TEST(Break23Bubble, KeptTimersNeverFireAfterTheBubble) {
    watchdog dog("KeptTimersNeverFireAfterTheBubble", std::chrono::seconds(60));
    std::atomic<int> fired{0};
    std::vector<goro::context> kept;
    std::vector<goro::recv_chan<tp>> timers;
    for (int round = 0; round < static_cast<int>(scaled(50, 5)); ++round) {
        goro::testing::bubble([&] {
            auto [ctx, cancel] = goro::with_timeout(goro::background(), 1ms);
            kept.push_back(ctx);
            timers.push_back(goro::after(1ns));
            goro::after_func(1ns, [&] { fired.fetch_add(1); });
            goro::go([] { goro::sleep_for(1ns); });  // a left goroutine, unwound
        });
        dog.pet();
    }
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(fired.load(), 0);
    for (std::size_t i = 0; i < kept.size(); ++i) {
        EXPECT_FALSE(kept[i].done().try_recv().closed()) << i;
        EXPECT_FALSE(kept[i].err()) << i << ": err() set while done() is open";
        EXPECT_FALSE(timers[i].try_recv().has_value()) << i;
    }
}

// Goroutines left running when fn returns (yielding in a loop, with a
// sleep now and then) never see the clock move after fn returned; they are
// unwound, not woken.
TEST(Break23Bubble, LeftYieldingGoroutinesSeeTheClockStandStill) {
    watchdog dog("LeftYieldingGoroutinesSeeTheClockStandStill", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(20, 4)); ++round) {
        std::atomic<std::int64_t> end_ns{0}, max_seen{0};
        std::atomic<int> unwound{0};
        goro::testing::bubble([&] {
            for (int k = 0; k < 4; ++k)
                goro::go([&, k] {
                    struct guard {
                        std::atomic<int>& n;
                        ~guard() { n.fetch_add(1); }
                    } g{unwound};
                    for (;;) {
                        const std::int64_t t = goro::now().time_since_epoch().count();
                        std::int64_t m = max_seen.load();
                        while (t > m && !max_seen.compare_exchange_weak(m, t)) {
                        }
                        for (int i = 0; i < 10 + k; ++i) goro::yield();
                        goro::sleep_for(1s);
                    }
                });
            goro::sleep_for(10s);  // wakes with the yielders' tenth sleep
            end_ns = goro::now().time_since_epoch().count();
        });
        ASSERT_EQ(unwound.load(), 4) << "round " << round;
        ASSERT_GT(max_seen.load(), 0) << "round " << round;
        ASSERT_LE(max_seen.load(), end_ns.load())
            << "round " << round << ": a left goroutine saw the clock move after fn returned by "
            << (max_seen.load() - end_ns.load()) << " ns";
        dog.pet();
    }
}

// Many bubbles in a row, each leaving goroutines whose unwinding sleeps.
TEST(Break23Bubble, ManyBubblesInARowWithSleepingDestructors) {
    watchdog dog("ManyBubblesInARowWithSleepingDestructors", std::chrono::seconds(60));
    const int bubbles = static_cast<int>(scaled(200, 10));
    for (int i = 0; i < bubbles; ++i) {
        std::atomic<int> done{0}, woke{0};
        std::atomic<std::int64_t> slept{0};
        goro::testing::bubble([&] {
            for (int k = 0; k < 5; ++k)
                spawn_left_sleeper_with_sleeping_cleanup((k + 1) * 1s, done, woke,
                                                         k == 4 ? &slept : nullptr);
            if (i % 2) goro::testing::wait();  // asleep, or not yet run
        });
        ASSERT_EQ(woke.load(), 0) << "bubble " << i;
        ASSERT_EQ(done.load(), 5) << "bubble " << i;
        ASSERT_EQ(slept.load(), std::chrono::nanoseconds(5s).count()) << "bubble " << i;
        dog.pet();
    }
}

// A bubble after a plain goro::run (which left goroutines sleeping, unwound
// by its own shutdown) behaves as the first one.
TEST(Break23Bubble, BubbleAfterAPlainRun) {
    watchdog dog("BubbleAfterAPlainRun", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(10, 2)); ++round) {
        std::atomic<int> run_unwound{0};
        goro::run([&] {
            for (int k = 0; k < 4; ++k)
                goro::go([&] {
                    struct guard {
                        std::atomic<int>& n;
                        ~guard() {
                            goro::sleep_for(1ms);  // real time, outside a bubble
                            n.fetch_add(1);
                        }
                    } g{run_unwound};
                    goro::sleep_for(1h);
                });
            goro::sleep_for(2ms);
        });
        ASSERT_EQ(run_unwound.load(), 4);
        std::atomic<int> done{0}, woke{0};
        std::atomic<std::int64_t> slept{0};
        const auto real0 = std::chrono::steady_clock::now();
        goro::testing::bubble([&] {
            spawn_left_sleeper_with_sleeping_cleanup(1h, done, woke, &slept);
            goro::testing::wait();
        });
        EXPECT_LT(std::chrono::steady_clock::now() - real0, 20s);
        ASSERT_EQ(done.load(), 1);
        ASSERT_EQ(woke.load(), 0);
        ASSERT_EQ(slept.load(), std::chrono::nanoseconds(1h).count());
        dog.pet();
    }
}

// after_func callbacks due just as fn returns (on fn's own last wake):
// their goroutine was started before fn returned, so it runs; one due a
// nanosecond after fn's wake never does.
TEST(Break23Bubble, AfterFuncDueAtTheEnd) {
    watchdog dog("AfterFuncDueAtTheEnd", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(40, 4)); ++round) {
        std::atomic<int> at_end{0}, after_end{0};
        goro::testing::bubble([&] {
            goro::after_func(1min, [&] { at_end.fetch_add(1); });
            goro::after_func(1min + 1ns, [&] { after_end.fetch_add(1); });
            goro::sleep_for(1min);
        });
        ASSERT_EQ(at_end.load(), 1) << "round " << round;
        ASSERT_EQ(after_end.load(), 0) << "round " << round;
        dog.pet();
    }
}

// fn returns while the others are blocked for ever (channels, a mutex, a
// wait_group) and no timer is pending: main returned, so that is no
// deadlock (as in run(): the others are unwound), and bubble returns fn's
// result.
TEST(Break23Bubble, FnReturnsWithTheOthersBlockedForEverIsNoDeadlock) {
    watchdog dog("FnReturnsWithTheOthersBlockedForEverIsNoDeadlock", std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(100, 10)); ++round) {
        std::atomic<int> unwound{0};
        struct guard {
            std::atomic<int>& n;
            ~guard() { n.fetch_add(1); }
        };
        int r = -1;
        EXPECT_NO_THROW(r = goro::testing::bubble([&] {
                            auto never = goro::make_chan<int>();
                            goro::go([&, never] {
                                guard g{unwound};
                                (void)never.recv();
                            });
                            goro::go([&, never] {
                                guard g{unwound};
                                never.send(1);
                                never.send(2);  // one is received below; the second never
                            });
                            (void)never.recv();
                            goro::testing::wait();
                            return 7;
                        }))
            << "round " << round;
        ASSERT_EQ(r, 7) << "round " << round;
        ASSERT_EQ(unwound.load(), 2) << "round " << round;
        dog.pet();
    }
}

// A goroutine whose destructor sleeps while a user exception unwinds it
// (parked exempt) from before fn returned: the clock stands still until the
// shutdown, then moves for it; it completes, and its goroutine, which
// caught the exception and sleeps again, is then unwound, not woken.
TEST(Break23Bubble, DestructorSleepingSinceBeforeFnReturnedCompletesInTheShutdown) {
    watchdog dog("DestructorSleepingSinceBeforeFnReturnedCompletesInTheShutdown",
                 std::chrono::seconds(60));
    for (int round = 0; round < static_cast<int>(scaled(40, 4)); ++round) {
        std::atomic<int> done{0}, caught{0}, woke{0}, unwound{0};
        std::atomic<std::int64_t> slept{0};
        goro::testing::bubble([&] {
            goro::go([&] {
                struct guard {
                    std::atomic<int>& n;
                    ~guard() { n.fetch_add(1); }
                } g{unwound};
                try {
                    sleeping_cleanup c{1h, done, &slept};
                    throw std::runtime_error("user error");
                } catch (const std::runtime_error&) {
                    caught.fetch_add(1);
                }
                goro::sleep_for(1ns);
                woke.fetch_add(1);
            });
            goro::testing::wait();  // it sleeps in the destructor
        });
        ASSERT_EQ(done.load(), 1) << "round " << round;
        ASSERT_EQ(slept.load(), std::chrono::nanoseconds(1h).count()) << "round " << round;
        ASSERT_EQ(caught.load(), 1) << "round " << round;
        ASSERT_EQ(woke.load(), 0) << "round " << round;
        ASSERT_EQ(unwound.load(), 1) << "round " << round;
        dog.pet();
    }
}

// goro::exit in fn: the others run on; once the last has ended, a context
// kept from the bubble (deadline later) never reaches its deadline.
TEST(Break23Bubble, ExitInMainKeptContextEndsWithTheLastGoroutine) {
    watchdog dog("ExitInMainKeptContextEndsWithTheLastGoroutine", std::chrono::seconds(60));
    std::vector<goro::context> kept;
    std::atomic<int> woke{0}, fired{0};
    const int rounds = static_cast<int>(scaled(50, 5));
    for (int round = 0; round < rounds; ++round) {
        goro::testing::bubble([&] {
            auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
            kept.push_back(ctx);
            goro::after_func(2h, [&] { fired.fetch_add(1); });
            goro::go([&] {
                goro::sleep_for(1min);
                woke.fetch_add(1);
            });
            goro::exit();
        });
        dog.pet();
    }
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(woke.load(), rounds);
    EXPECT_EQ(fired.load(), 0);
    for (std::size_t i = 0; i < kept.size(); ++i)
        EXPECT_FALSE(kept[i].done().try_recv().closed()) << i;
}

// ---- Defects -----------------------------------------------------------------

// The bubble has one clock: when it moves in the shutdown for a destructor
// that sleeps while unwinding, the timers due on the way fire as well (as
// in Go's synctest, where time goes on for the whole bubble): a context
// kept from fn reaches its 30 s deadline on the way to the destructor's
// 1 min, and an after_func due then runs (docs/debugging.md). Timers due
// after the last such wake never fire (KeptTimersNeverFireAfterTheBubble).
TEST(Break23Bubble, ShutdownClockMotionFiresTheTimersOnTheWay) {
    watchdog dog("ShutdownClockMotionFiresTheTimersOnTheWay", std::chrono::seconds(60));
    std::atomic<int> fired{0}, done{0}, woke{0};
    std::optional<goro::context> kept;
    goro::testing::bubble([&] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 30s);
        kept = ctx;
        goro::after_func(30s, [&] { fired.fetch_add(1); });
        spawn_left_sleeper_with_sleeping_cleanup(1min, done, woke);
        goro::testing::wait();
    });
    EXPECT_EQ(done.load(), 1);
    EXPECT_EQ(woke.load(), 0);
    EXPECT_EQ(fired.load(), 1) << "the after_func due on the clock's way did not run";
    ASSERT_TRUE(kept.has_value());
    EXPECT_TRUE(kept->done().try_recv().closed())
        << "the kept context's 30 s deadline, passed in the shutdown, did not fire";
}

namespace {

// A goroutine left sleeping whose unwinding blocks for ever (a receive
// nobody answers): the shutdown abandons it after about 0.5 s
// (resolve_stuck, report_abandoned), leaving its record parked with
// `claimed | parked_exempt` and state `waiting` for good.
void leave_an_abandoned_destructor() {
    goro::testing::bubble([] {
        goro::go([] {
            struct stuck {
                ~stuck() {
                    auto never = goro::make_chan<int>();
                    (void)never.recv();
                }
            } s;
            goro::sleep_for(1h);
        });
        goro::testing::wait();
    });
}

}  // namespace

// A goroutine abandoned in an earlier shutdown (blocked for ever in a
// destructor: resolve_stuck's report_abandoned) keeps state `waiting` with
// `claimed | parked_exempt` for good. an_unwind_is_pending and
// a_wake_is_in_flight once read it as a wake pending: in every later
// bubble's shutdown the clock never moved (a destructor's 1 s sleep hung),
// and no later deadlock was declared. They skip abandoned records now.
TEST(Break23Bubble, AbandonedDestructorFreezesLaterShutdownClocks) {
    watchdog dog("AbandonedDestructorFreezesLaterShutdownClocks", std::chrono::seconds(20));
    leave_an_abandoned_destructor();
    std::atomic<int> done{0}, woke{0};
    goro::testing::bubble([&] {
        spawn_left_sleeper_with_sleeping_cleanup(1s, done, woke);
        goro::testing::wait();
    });
    dog.pet();
    EXPECT_EQ(done.load(), 1);
    EXPECT_EQ(woke.load(), 0);
}

// The same stale record, the deadlock side: a later bubble's real deadlock
// is still declared (it once hung instead: "a wake in flight").
TEST(Break23Bubble, AbandonedDestructorHidesLaterDeadlocks) {
    watchdog dog("AbandonedDestructorHidesLaterDeadlocks", std::chrono::seconds(20));
    leave_an_abandoned_destructor();
    EXPECT_THROW(goro::testing::bubble([] {
                     auto never = goro::make_chan<int>();
                     (void)never.recv();
                 }),
                 goro::deadlock_error);
    dog.pet();
}

// The same stale record, left by a plain goro::run's shutdown.
TEST(Break23Bubble, AbandonedInAPlainRunFreezesALaterBubble) {
    watchdog dog("AbandonedInAPlainRunFreezesALaterBubble", std::chrono::seconds(20));
    goro::run([] {
        goro::go([] {
            struct stuck {
                ~stuck() {
                    auto never = goro::make_chan<int>();
                    (void)never.recv();
                }
            } s;
            goro::sleep_for(1h);
        });
        goro::sleep_for(5ms);
    });
    std::atomic<int> done{0}, woke{0};
    goro::testing::bubble([&] {
        spawn_left_sleeper_with_sleeping_cleanup(1s, done, woke);
        goro::testing::wait();
    });
    dog.pet();
    EXPECT_EQ(done.load(), 1);
    EXPECT_EQ(woke.load(), 0);
}
