// tests/break24_test.cpp — hostile tests of 3f1828c: wait_group's add() that
// takes a new round's counter from zero while the ended round's waiters are
// still counted (the zeroing call between its RMW and its CAS) takes their
// wake-ups over (take_over_wake_ups, wait_group.cpp). Tried: a waiter of the
// new round returning before its round's zero; an ended round's waiter held
// or hung; use after free by a zeroing done() still in flight when the last
// waiter deletes; lost or double wake-ups with hundreds of waiters per round
// and rounds back to back from several adders; goroutine (procs 1, 2, 8)
// and plain-thread waiters mixed; wait_group::go(); shutdown with an ended
// round's waiters parked; misused done() racing all of it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;
using goro_test::wg_state;
using goro_test::wg_waiters;

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t counter_of(std::uint64_t s) {
    return static_cast<std::int32_t>(s >> 32);
}

// Polls pred for up to `limit`; from a goroutine it sleeps with goro's
// sleep_for (a worker blocked in std::this_thread::sleep_for would keep the
// goroutines it waits for from running with procs 1).
template <class F>
bool eventually_g(F pred, std::chrono::milliseconds limit = 5s) {
    const auto end = clock_type::now() + limit;
    while (clock_type::now() < end) {
        if (pred()) return true;
        goro::sleep_for(200us);
    }
    return pred();
}

// A hang found: the test fails with `what` and the process ends (a thread
// still blocked in wait() cannot be joined).
[[noreturn]] void hung(const std::string& what) {
    ADD_FAILURE() << what;
    std::fprintf(stderr, "break24: HUNG: %s\n", what.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(1);
}

// Spins until pred (a plain thread), at most `limit`.
template <class F>
bool spin_until(F pred, std::chrono::milliseconds limit = 5s) {
    const auto end = clock_type::now() + limit;
    for (long i = 0;; ++i) {
        if (pred()) return true;
        if ((i & 1023) == 0 && clock_type::now() > end) return false;
    }
}

bool time_left(clock_type::time_point start, std::chrono::milliseconds budget) {
    return clock_type::now() - start < budget;
}

// Two threads that call done() whenever the counter shows zero, until
// `stop`: each call throws (counted in `threw`), or, having read zero just
// before a correct add(), steals a count (`stole`) and gives it back.
std::vector<std::thread> misusers_at_zero(goro::wait_group& wg, std::atomic<bool>& stop,
                                          std::atomic<long>& threw, std::atomic<long>& stole) {
    std::vector<std::thread> misusers;
    for (int m = 0; m < 2; ++m)
        misusers.emplace_back([&] {
            while (!stop.load()) {
                if (counter_of(wg_state(wg)) != 0) continue;
                try {
                    wg.done();
                    stole.fetch_add(1);
                    wg.add(1);
                } catch (const goro::negative_counter_error&) {
                    threw.fetch_add(1);
                }
            }
        });
    return misusers;
}

}  // namespace

// --------------------------------------------------- the take-over window

// One round's waiters (goroutines and plain threads) parked; a zero thread
// calls done(); an adder thread spinning on the state adds the next round
// (add(2)) the moment it sees the counter at zero (break19's way into the
// window between the zeroing done()'s RMW and its CAS); new-round waiters
// (plain threads spinning for the counter 2, so that some register between
// the adder's RMW and its take-over CAS, and goroutines started after)
// wait. Every waiter of the ended round must return while the new round is
// open; no waiter of the new round may return before the new round's two
// done()s (released2 is set first). procs 1, 2 and 8.
TEST(Break24WaitGroup, NewRoundWaitersNotReleasedByTakeOver) {
    for (unsigned p : {1u, 2u, 8u}) {
        const int iters = static_cast<int>(scaled(400, 2));
        std::atomic<int> early{0}, raced{0}, iterations{0}, in_round{0};
        goro::run(procs(p), [&] {
            const auto start = clock_type::now();
            for (int it = 0; it < iters && time_left(start, 1200ms); ++it) {
                constexpr int old_g = 4, old_t = 2, new_t = 2, new_g = 3;
                auto wg = std::make_shared<goro::wait_group>();
                wg->add(1);
                auto old_back = std::make_shared<std::atomic<int>>(0);
                auto new_back = std::make_shared<std::atomic<int>>(0);
                auto released2 = std::make_shared<std::atomic<bool>>(false);
                for (int i = 0; i < old_g; ++i)
                    goro::go([wg, old_back] {
                        wg->wait();
                        old_back->fetch_add(1);
                    });
                std::vector<std::thread> threads;
                for (int i = 0; i < old_t; ++i)
                    threads.emplace_back([wg, old_back] {
                        wg->wait();
                        old_back->fetch_add(1);
                    });
                if (!eventually_g([&] { return wg_waiters(*wg) == old_g + old_t; }))
                    hung("the ended round's waiters did not register: " +
                         std::to_string(wg_waiters(*wg)));
                auto go_flag = std::make_shared<std::atomic<bool>>(false);
                auto decided = std::make_shared<std::atomic<int>>(0);
                auto joined = std::make_shared<std::atomic<int>>(0);
                // New round's plain waiters: wait() as soon as the adder's
                // RMW shows (counter 2: the old round's is 1).
                for (int i = 0; i < new_t; ++i)
                    threads.emplace_back(
                        [&early, wg, new_back, released2, go_flag, decided, joined] {
                            // One that the scheduler starts too late for the
                            // new round stays out of it.
                            const bool in =
                                spin_until([&] { return go_flag->load(); }) && spin_until([&] {
                                    return counter_of(wg_state(*wg)) >= 2 || released2->load();
                                }) &&
                                !released2->load();
                            if (in) joined->fetch_add(1);
                            decided->fetch_add(1);
                            if (!in) return;
                            wg->wait();
                            if (!released2->load()) early.fetch_add(1);
                            new_back->fetch_add(1);
                        });
                threads.emplace_back([&raced, wg, go_flag] {
                    if (!spin_until([&] { return go_flag->load(); })) return;
                    for (;;) {
                        const std::uint64_t s = wg_state(*wg);
                        if (counter_of(s) == 0) {
                            if ((s & 0xffffffffu) != 0) raced.fetch_add(1);
                            wg->add(2);  // the next round, at once
                            return;
                        }
                    }
                });
                threads.emplace_back([wg, go_flag] {
                    go_flag->store(true);
                    wg->done();
                });
                if (!eventually_g([&] { return counter_of(wg_state(*wg)) == 2; }))
                    hung("the next round's add did not land");
                for (int i = 0; i < new_g; ++i)
                    goro::go([&early, wg, new_back, released2] {
                        wg->wait();
                        if (!released2->load()) early.fetch_add(1);
                        new_back->fetch_add(1);
                    });
                if (!eventually_g([&] { return old_back->load() == old_g + old_t; }))
                    hung("iteration " + std::to_string(it) + " procs " + std::to_string(p) +
                         ": an ended round's waiter held by the next round's add(): " +
                         std::to_string(old_back->load()) + " of " + std::to_string(old_g + old_t) +
                         " returned, state " + std::to_string(counter_of(wg_state(*wg))) + "/" +
                         std::to_string(wg_waiters(*wg)));
                // Give a new-round waiter wrongly woken the time to show.
                goro::yield();
                EXPECT_EQ(new_back->load(), 0)
                    << "a waiter of the new round returned before its round's zero";
                released2->store(true);
                wg->done();
                wg->done();
                if (!eventually_g([&] {
                        return decided->load() == new_t &&
                               new_back->load() == new_g + joined->load();
                    }))
                    hung("a new round's waiter not woken by its zero: " +
                         std::to_string(new_back->load()) + " of " +
                         std::to_string(new_g + joined->load()) + " returned (" +
                         std::to_string(decided->load()) + " of " + std::to_string(new_t) +
                         " plain ones decided), state " +
                         std::to_string(counter_of(wg_state(*wg))) + "/" +
                         std::to_string(wg_waiters(*wg)));
                in_round += joined->load();
                for (auto& t : threads) t.join();
                EXPECT_EQ(wg_state(*wg), 0u);
                iterations.fetch_add(1);
            }
        });
        EXPECT_EQ(early.load(), 0) << "procs " << p;
        EXPECT_GT(iterations.load(), 0);
        std::printf(
            "procs %u: %d iterations, %d adds saw {0, waiters}, %d plain new-round waiters\n", p,
            iterations.load(), raced.load(), in_round.load());
    }
}

// The last waiter to return deletes the wait_group — the zeroing done() of
// the ended round may still be between its RMW and its (failing) CAS when
// the next round's add() has taken its wake-ups over, woken the waiter, and
// that round ended (ASan: no use after free). Waiters: a plain thread, and
// goroutines. Each waiter, once back, waits again for the next round (the
// adder's add() and done() both returned), and the last one deletes.
TEST(Break24WaitGroup, LastWaiterDeletesWhileTheZeroingDoneMayBeInFlight) {
    goro::run(procs(2), [] {
        const long iters = scaled(1500, 2);
        const auto start = clock_type::now();
        long raced = 0, n = 0;
        for (; n < iters && time_left(start, 2000ms); ++n) {
            constexpr int gw = 3;
            auto* wg = new goro::wait_group;
            wg->add(1);
            auto remaining = std::make_shared<std::atomic<int>>(gw + 1);
            auto second_round_done = std::make_shared<std::atomic<bool>>(false);
            auto deleted = std::make_shared<std::atomic<bool>>(false);
            auto waiter = [wg, remaining, second_round_done, deleted] {
                wg->wait();
                while (!second_round_done->load()) std::this_thread::yield();
                wg->wait();  // at zero: returns at once
                if (remaining->fetch_sub(1) == 1) {
                    delete wg;
                    deleted->store(true);
                }
            };
            for (int i = 0; i < gw; ++i)
                goro::go([waiter] {
                    // A goroutine may not spin on a flag set by a plain
                    // thread with procs 2 forever; the flag comes quickly.
                    waiter();
                });
            std::thread plain(waiter);
            if (!eventually_g([&] { return wg_waiters(*wg) == gw + 1; }))
                hung("waiters did not register");
            std::atomic<bool> go{false};
            std::atomic<bool> saw{false};
            std::thread adder([&] {
                while (!go.load()) {
                }
                for (;;) {
                    const std::uint64_t s = wg_state(*wg);
                    if (counter_of(s) == 0) {
                        saw = (s & 0xffffffffu) != 0;
                        wg->add(1);
                        wg->done();
                        second_round_done->store(true);
                        return;
                    }
                }
            });
            std::thread zero([&] {
                go = true;
                wg->done();
            });
            zero.join();
            adder.join();
            raced += saw.load();
            if (!eventually_g([&] { return deleted->load(); }))
                hung("a waiter hung: " + std::to_string(remaining->load()) + " still out");
            plain.join();
        }
        EXPECT_GT(n, 0);
        std::printf("%ld iterations, %ld adds saw {0, waiters}\n", n, raced);
    });
}

// ------------------------------------------- hundreds of waiters, rounds

// One wait_group reused by three adder goroutines, rounds back to back: each
// adds 1, starts 60 goroutine waiters (and every 16th round a plain-thread
// waiter) that know its token, marks the token and calls done(), then the
// next round at once. A waiter started after a token's add() must not
// return before that token's done (every add before the wait is matched by
// the zero that wakes it); every waiter must return (no lost wake-up); at
// the end the state is {0, 0} (no double count). procs 1, 2, 8.
TEST(Break24WaitGroup, HundredsOfWaitersRoundsBackToBackFromSeveralAdders) {
    for (unsigned p : {1u, 2u, 8u}) {
        constexpr int adders = 3, per_token = 60;
        const int rounds = static_cast<int>(scaled(120, 10));
        const int tokens = adders * rounds;
        auto token_done = std::make_unique<std::atomic<bool>[]>(tokens);
        for (int i = 0; i < tokens; ++i) token_done[i] = false;
        std::atomic<long> early{0}, back{0}, started{0};
        goro::wait_group wg;
        goro::run(procs(p), [&] {
            std::vector<std::thread> plain;
            std::mutex plain_mu;
            goro::wait_group adders_wg;
            for (int a = 0; a < adders; ++a)
                adders_wg.go([&, a] {
                    for (int r = 0; r < rounds; ++r) {
                        const int t = r * adders + a;
                        wg.add(1);
                        auto waiter = [&, t] {
                            wg.wait();
                            if (!token_done[t].load()) early.fetch_add(1);
                            back.fetch_add(1);
                        };
                        for (int i = 0; i < per_token; ++i) {
                            started.fetch_add(1);
                            goro::go(waiter);
                        }
                        if (r % 16 == a) {
                            started.fetch_add(1);
                            std::lock_guard lk(plain_mu);
                            plain.emplace_back(waiter);
                        }
                        if (r % 3 == 0) goro::yield();
                        token_done[t].store(true);
                        wg.done();
                    }
                });
            adders_wg.wait();
            if (!eventually_g([&] { return back.load() == started.load(); }, 20s))
                hung("procs " + std::to_string(p) + ": lost wake-up: " +
                     std::to_string(back.load()) + " of " + std::to_string(started.load()) +
                     " waiters returned, state " + std::to_string(counter_of(wg_state(wg))) + "/" +
                     std::to_string(wg_waiters(wg)));
            for (auto& t : plain) t.join();
        });
        EXPECT_EQ(early.load(), 0) << "procs " << p;
        EXPECT_EQ(back.load(), started.load()) << "procs " << p;
        EXPECT_EQ(
            started.load(), static_cast<long>(tokens) * per_token +
                                [&] {
                                    long n = 0;
                                    for (int r = 0; r < rounds; ++r)
                                        for (int a = 0; a < adders; ++a) n += r % 16 == a;
                                    return n;
                                }())
            << "procs " << p;
        EXPECT_EQ(wg_state(wg), 0u) << "procs " << p;
    }
}

// The same as a plain-thread crowd: several plain adder threads reuse one
// wait_group round after round; each round's zero races the next round's
// add() (the adders start their next add as soon as the counter shows zero);
// hundreds of plain waiters and goroutine waiters per round. Each waiter
// notes the round number it saw after its round's add, and must not come
// back before that round's tokens are all done.
TEST(Break24WaitGroup, PlainAddersRaceEveryZeroWithHundredsOfWaiters) {
    const int rounds = static_cast<int>(scaled(60, 6));
    constexpr int adders = 3, gwaiters = 200, twaiters = 4;
    auto pending = std::make_unique<std::atomic<int>[]>(rounds);
    for (int r = 0; r < rounds; ++r) pending[r] = adders;
    std::atomic<long> early{0}, back{0}, started{0};
    goro::wait_group wg;
    goro::run(procs(2), [&] {
        std::vector<std::thread> token_threads;
        for (int r = 0; r < rounds; ++r) {
            // The adders of round r add as soon as the previous round's
            // last done() has been issued (its counter may still show 1:
            // then they wait for the zero, and add the instant they see it).
            std::atomic<int> added{0};
            std::vector<std::thread> th;
            for (int a = 0; a < adders; ++a)
                th.emplace_back([&] {
                    if (!spin_until(
                            [&] { return added.load() > 0 || counter_of(wg_state(wg)) == 0; }))
                        return;
                    wg.add(1);
                    added.fetch_add(1);
                });
            for (auto& t : th) t.join();
            if (added.load() != adders) hung("an adder never saw the zero");
            auto waiter = [&, r] {
                wg.wait();
                if (pending[r].load() != 0) early.fetch_add(1);
                back.fetch_add(1);
            };
            for (int i = 0; i < gwaiters; ++i) {
                started.fetch_add(1);
                goro::go(waiter);
            }
            std::vector<std::thread> tw;
            for (int i = 0; i < twaiters; ++i) {
                started.fetch_add(1);
                tw.emplace_back(waiter);
            }
            goro::yield();
            // The round's tokens from plain threads at once (not joined:
            // the next round's adders race the last one).
            for (int a = 0; a < adders; ++a)
                token_threads.emplace_back([&, r] {
                    pending[r].fetch_sub(1);
                    wg.done();
                });
            for (auto& t : tw) t.join();  // the round ended: they return
        }
        if (!eventually_g([&] { return back.load() == started.load(); }, 20s))
            hung("lost wake-up: " + std::to_string(back.load()) + " of " +
                 std::to_string(started.load()));
        if (!eventually_g([&] { return wg_state(wg) == 0; })) hung("state not {0, 0}");
        for (auto& t : token_threads) t.join();
    });
    EXPECT_EQ(early.load(), 0);
    EXPECT_EQ(back.load(), started.load());
    EXPECT_EQ(wg_state(wg), 0u);
}

// --------------------------------------------------------- wait_group::go

// Rounds of wg.go(): the main goroutine starts a round's tasks (one starts a
// nested task) and its waiters, spins until the counter shows zero and at
// once starts the next round's tasks — racing the last task's zeroing
// done() (its done_on_exit) between its RMW and its CAS. A waiter of round r
// must see all of round r's tasks finished; every waiter returns.
TEST(Break24WaitGroup, GoRoundsBackToBack) {
    for (unsigned p : {1u, 2u, 8u}) {
        const int rounds = static_cast<int>(scaled(300, 10));
        constexpr int tasks = 4, waiters = 40;
        auto left = std::make_unique<std::atomic<int>[]>(rounds);
        std::atomic<long> early{0}, back{0}, started{0};
        goro::wait_group wg;
        goro::run(procs(p), [&] {
            std::vector<std::thread> plain;
            for (int r = 0; r < rounds; ++r) {
                left[r] = tasks + 1;
                for (int i = 0; i < tasks; ++i)
                    wg.go([&, r, i] {
                        if (i == 0)
                            wg.go([&, r] {
                                goro::yield();
                                left[r].fetch_sub(1);
                            });
                        if (i % 2) goro::yield();
                        left[r].fetch_sub(1);
                    });
                auto waiter = [&, r] {
                    wg.wait();
                    if (left[r].load() != 0) early.fetch_add(1);
                    back.fetch_add(1);
                };
                for (int i = 0; i < waiters; ++i) {
                    started.fetch_add(1);
                    goro::go(waiter);
                }
                if (r % 32 == 0) {
                    started.fetch_add(1);
                    plain.emplace_back(waiter);
                }
                // The next round begins the moment the counter shows zero.
                const auto end = clock_type::now() + 5s;
                while (wg.count() != 0) {
                    if (clock_type::now() > end) hung("a round's tasks did not finish");
                    if (p == 1) goro::yield();
                }
            }
            if (!eventually_g([&] { return back.load() == started.load(); }, 20s))
                hung("procs " + std::to_string(p) + ": lost wake-up: " +
                     std::to_string(back.load()) + " of " + std::to_string(started.load()));
            for (auto& t : plain) t.join();
        });
        EXPECT_EQ(early.load(), 0) << "procs " << p;
        EXPECT_EQ(back.load(), started.load()) << "procs " << p;
        EXPECT_EQ(wg_state(wg), 0u) << "procs " << p;
    }
}

// ------------------------------------------------------------- shutdown

// run()'s main goroutine ends a round with waiters (goroutines) parked and
// returns at once, while a plain thread adds the next round the moment it
// sees the zero, holds it 30 ms, then ends it. Other goroutines wait in the
// new round. run() must return (bounded); the ended round's waiters return
// from wait() normally (their round ended); no waiter of the new round may
// return before its done()s.
TEST(Break24WaitGroup, ShutdownWithAnEndedRoundsWaitersParked) {
    const int iters = static_cast<int>(scaled(40, 4));
    for (int it = 0; it < iters; ++it) {
        const unsigned p = it % 3 == 0 ? 1u : it % 3 == 1 ? 2u : 8u;
        constexpr int old_g = 30, new_g = 5;
        goro::wait_group wg;
        std::atomic<int> old_back{0}, early{0};
        std::atomic<bool> released{false}, go_flag{false}, run_returned{false};
        std::thread adder([&] {
            if (!spin_until([&] { return go_flag.load(); }, 10s)) return;
            if (!spin_until([&] { return counter_of(wg_state(wg)) == 0; }, 10s)) return;
            wg.add(2);
            std::this_thread::sleep_for(30ms);
            released = true;
            wg.done();
            wg.done();
        });
        std::thread runner([&] {
            goro::run(procs(p), [&] {
                wg.add(1);
                for (int i = 0; i < old_g; ++i)
                    goro::go([&] {
                        wg.wait();
                        old_back.fetch_add(1);
                    });
                for (int i = 0; i < new_g; ++i)
                    goro::go([&] {
                        while (counter_of(wg_state(wg)) < 2) goro::yield();
                        wg.wait();
                        if (!released.load()) early.fetch_add(1);
                    });
                if (!eventually_g([&] { return wg_waiters(wg) == old_g; }))
                    hung("waiters did not register");
                go_flag = true;
                wg.done();
            });
            run_returned = true;
        });
        if (!goro_test::eventually([&] { return run_returned.load(); }, 15s))
            hung("iteration " + std::to_string(it) + ": run() did not return, state " +
                 std::to_string(counter_of(wg_state(wg))) + "/" + std::to_string(wg_waiters(wg)));
        runner.join();
        adder.join();
        EXPECT_EQ(old_back.load(), old_g) << "iteration " << it << " procs " << p
                                          << ": an ended round's waiter did not return normally";
        EXPECT_EQ(early.load(), 0) << "iteration " << it;
        EXPECT_EQ(wg_state(wg), 0u) << "iteration " << it;
    }
}

// ------------------------------------------------------- misused done()

// The take-over window with misused done()s hammered at the same time from
// two plain threads (each one that throws negative_counter_error must leave
// the counter as it was; one that does not throw stole a real count, and
// its thread gives it back with add(1)). The ended round's waiter must
// return while the new round is still open; every waiter returns; the state
// ends at {0, 0}; nothing but negative_counter_error is thrown.
TEST(Break24WaitGroup, MisusedDoneHammeredAcrossTheTakeOver) {
    goro::run(procs(2), [] {});  // a runtime for the plain threads' waits
    const long iters = scaled(1500, 10);
    const auto start = clock_type::now();
    long n = 0, threw = 0, stole = 0, other = 0;
    for (; n < iters && time_left(start, 2000ms); ++n) {
        goro::wait_group wg;
        wg.add(1);
        std::atomic<bool> returned{false};
        std::thread w([&] {
            wg.wait();
            returned = true;
        });
        if (!spin_until([&] { return wg_waiters(wg) == 1; })) hung("the waiter did not register");
        std::atomic<bool> go{false}, stop{false};
        std::atomic<long> m_threw{0}, m_stole{0}, m_other{0};
        auto misuser = [&] {
            while (!go.load()) {
            }
            while (!stop.load()) {
                try {
                    wg.done();
                    m_stole.fetch_add(1);
                    wg.add(1);  // give it back
                } catch (const goro::negative_counter_error&) {
                    m_threw.fetch_add(1);
                } catch (...) {
                    m_other.fetch_add(1);
                }
            }
        };
        std::thread m1(misuser), m2(misuser);
        std::atomic<long> zero_threw{0};
        std::thread adder([&] {
            while (!go.load()) {
            }
            for (;;) {
                const std::uint64_t s = wg_state(wg);
                if (counter_of(s) <= 0) {
                    wg.add(2);  // the next round
                    return;
                }
            }
        });
        std::thread zero([&] {
            go = true;
            try {
                wg.done();
            } catch (const goro::negative_counter_error&) {
                zero_threw.fetch_add(1);  // a misuser's steal came first
            }
        });
        zero.join();
        adder.join();
        const bool back_in_time = goro_test::eventually([&] { return returned.load(); }, 2s);
        stop = true;
        m1.join();
        m2.join();
        threw += m_threw;
        stole += m_stole;
        other += m_other;
        if (!back_in_time)
            hung("iteration " + std::to_string(n) +
                 ": the ended round's waiter held by the next round (misused done()s " +
                 std::to_string(m_threw.load()) + " threw, " + std::to_string(m_stole.load()) +
                 " stole), state " + std::to_string(counter_of(wg_state(wg))) + "/" +
                 std::to_string(wg_waiters(wg)));
        // The new round: a waiter, then its tokens (one fewer if the zero
        // thread's done() threw: a steal then ended the old round).
        std::atomic<bool> back2{false};
        std::thread w2([&] {
            wg.wait();
            back2 = true;
        });
        for (std::int64_t c = wg.count(); c > 0; --c) wg.done();
        if (!goro_test::eventually([&] { return back2.load(); }, 5s))
            hung("the new round's waiter hung, state " + std::to_string(counter_of(wg_state(wg))) +
                 "/" + std::to_string(wg_waiters(wg)));
        w.join();
        w2.join();
        EXPECT_EQ(wg_state(wg), 0u) << "iteration " << n;
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_EQ(other, 0);
    EXPECT_GT(threw, 0) << "the misusers never hit a zero";
    std::printf("%ld iterations; misused done()s: %ld threw, %ld stole\n", n, threw, stole);
}

// Misused done()s on an idle wait_group (counter zero, waiters of ended
// rounds possibly still counted) racing a stream of correct rounds: each
// throws negative_counter_error and leaves no trace; the rounds' waiters
// (goroutines, procs 2) all return and none early. The misusers only call
// done() while the counter shows zero, so they rarely steal; a steal (no
// throw) is given back at once and the early check is then skipped.
//
// Was a DEFECT, fixed (add() now changes the counter by a CAS that checks
// the result first: a misused done() is never visible to other calls). It was (line numbers below
// as printed in those runs; this comment has moved them): a misused done() that throws
// negative_counter_error still lets a correct round's waiter return before the round's done().
// Release, three copies at once, --gtest_repeat=5 (15 runs): waiters
// returned early in 13 of 15 runs; the test failed in 5 of them (those
// with no steal at all, so nothing but thrown misuses):
//   break24_test.cpp:683: Failure
//   Expected equality of these values:
//     early.load()
//       Which is: 102
//     0
//   misused done()s: 363510 threw, 0 stole; 102 early
// (other runs: 39, 9, 132, 54 early with 0 stole). Not seen in a single
// ASan run (0 early). Reproduce:
//   cd build/release/tests && for k in 1 2 3; do (./goro_tests
//   --gtest_filter='Break24*MisusedDoneAtZeroBetweenRounds' --gtest_repeat=5
//   > /tmp/b24_$k.log 2>&1) & done; wait
// Cause: add() applies the delta first and undoes an out-of-range result
// afterwards (wait_group.cpp:83 fetch_add, :86 fetch_sub). Between the two,
// the word holds the misuser's -1; the main goroutine's add(1) for the next
// round lands on it (-1 + 1 = 0: it does not throw, and takes the c == 0
// path at :92 as if it had ended a round) and returns; a waiter started
// after it then reads counter 0 in wait() (:182) and returns at once,
// before the misuser's undo makes the counter 1. The header promises that a
// throwing done() leaves the counter unchanged; a concurrent correct user
// sees it changed.
// Runs of the three tests together before the fix (three copies at
// once): release failed 1 of 15, ASan 1 of 6, TSan 0 of 6.
TEST(Break24WaitGroup, MisusedDoneAtZeroBetweenRounds) {
    const int rounds = static_cast<int>(scaled(300, 10));
    std::atomic<long> early{0}, back{0}, started{0}, threw{0}, stole{0};
    std::atomic<bool> stop{false};
    goro::wait_group wg;
    auto token_done = std::make_unique<std::atomic<bool>[]>(rounds);
    goro::run(procs(2), [&] {
        std::vector<std::thread> token_threads;
        std::vector<std::thread> misusers = misusers_at_zero(wg, stop, threw, stole);
        for (int r = 0; r < rounds; ++r) {
            token_done[r] = false;
            wg.add(1);
            for (int i = 0; i < 30; ++i) {
                started.fetch_add(1);
                goro::go([&, r] {
                    wg.wait();
                    if (!token_done[r].load()) early.fetch_add(1);
                    back.fetch_add(1);
                });
            }
            goro::yield();
            token_threads.emplace_back([&, r] {
                token_done[r] = true;
                // A misuser's steal may have taken this count (it gives it
                // back): then this done() throws; again until it counts.
                for (;;) {
                    try {
                        wg.done();
                        return;
                    } catch (const goro::negative_counter_error&) {
                        std::this_thread::yield();
                    }
                }
            });
            // The next round's add() as soon as the counter shows zero.
            const auto end = clock_type::now() + 5s;
            while (counter_of(wg_state(wg)) > 0)
                if (clock_type::now() > end) hung("a round did not end");
        }
        const bool all_back = eventually_g([&] { return back.load() == started.load(); }, 20s);
        stop = true;
        for (auto& t : misusers) t.join();
        for (auto& t : token_threads) t.join();
        if (!all_back)
            hung("lost wake-up: " + std::to_string(back.load()) + " of " +
                 std::to_string(started.load()) + ", state " +
                 std::to_string(counter_of(wg_state(wg))) + "/" + std::to_string(wg_waiters(wg)));
    });
    if (stole.load() == 0) {
        EXPECT_EQ(early.load(), 0);
    }
    EXPECT_GT(threw.load(), 0);
    EXPECT_EQ(wg_state(wg), 0u);
    std::printf("misused done()s: %ld threw, %ld stole; %ld early\n", threw.load(), stole.load(),
                early.load());
}

// Misused done()s at zero (two plain threads calling done() whenever the
// counter shows zero: each throws negative_counter_error) while a correct
// thread runs rounds: add(1), then wait() at once — which must not return
// before a helper thread (that waits for the waiter to be counted) calls
// the round's done(). Steals (a misuser's done() that did not throw: it
// read zero before the add) are given back and their rounds not judged.
//
// Was a DEFECT, fixed (add() now changes the counter by a CAS that checks
// the result first: a misused done() is never visible to other calls). It was (line numbers below
// as printed in those runs): the same as MisusedDoneAtZeroBetweenRounds, reduced to one thread's
// add(1) then wait(). Release, alone while a TSan build ran: failed 1 of 1; three copies at once,
// --gtest_repeat=5: failed 1 of 15:
//   break24_test.cpp:761: Failure
//   Expected equality of these values:
//     early
//       Which is: 1
//     0
//   wait() returned before the round's done(), right after the round's
//   add(1) returned (a misused done() in flight): 1 of 9321 rounds
// Reproduce: cd build/release/tests && for k in 1 2 3; do (./goro_tests
//   --gtest_filter='Break24*LetACorrectRoundsWaitReturnEarly'
//   --gtest_repeat=5 > /tmp/b24_$k.log 2>&1) & done; wait
// Cause: wait_group.cpp:83/:86 (the misuser's -1 is visible until its
// undo; add(1) over it gives 0) and :182 (wait() returns on that 0).
// Runs of the three tests together before the fix (three copies at
// once): release failed 5 of 15, ASan 0 of 6, TSan 2 of 6.
TEST(Break24WaitGroup, MisusedDoneAtZeroDoesNotLetACorrectRoundsWaitReturnEarly) {
    goro::run(procs(2), [] {});  // a runtime for the plain threads' waits
    goro::wait_group wg;
    std::atomic<bool> stop{false}, released{false};
    std::atomic<long> threw{0}, stole{0}, phase{0}, back{0}, finished{0};
    auto done_counted = [&] {
        for (;;) {
            try {
                wg.done();
                return;
            } catch (const goro::negative_counter_error&) {
                std::this_thread::yield();  // a misuser's steal, given back soon
            }
        }
    };
    std::vector<std::thread> misusers = misusers_at_zero(wg, stop, threw, stole);
    std::thread helper([&] {
        for (long seen = 0;;) {
            long i;
            while ((i = phase.load()) == seen) {
            }
            if (i < 0) return;
            seen = i;
            while (wg_waiters(wg) == 0 && back.load() != i) {
            }
            released = true;
            done_counted();
            finished = i;
        }
    });
    const auto start = clock_type::now();
    const long iters = scaled(400000, 20);
    long n = 0, early = 0, judged = 0;
    for (long i = 1; i <= iters && time_left(start, 2000ms); ++i, ++n) {
        released = false;
        const long stole_before = stole.load();
        wg.add(1);
        phase = i;
        wg.wait();
        const bool rel = released.load();
        back = i;
        if (!spin_until([&] { return finished.load() == i; })) hung("the helper hung");
        if (stole.load() == stole_before) {
            ++judged;
            if (!rel) ++early;
        }
    }
    phase = -1;
    stop = true;
    helper.join();
    for (auto& t : misusers) t.join();
    EXPECT_EQ(early, 0) << "wait() returned before the round's done(), right after the round's "
                           "add(1) returned (a misused done() in flight): "
                        << early << " of " << judged << " rounds";
    EXPECT_GT(threw.load(), 0);
    EXPECT_EQ(wg_state(wg), 0u);
    std::printf("%ld rounds (%ld judged); misused done()s: %ld threw, %ld stole; %ld early\n", n,
                judged, threw.load(), stole.load(), early);
}

// The take-over window with misused done()s at the zero: the ended round's
// waiter parked, a zero thread's done(), misusers calling done() whenever
// they see the counter at zero, and an adder adding the next round (add(2))
// the moment it sees the counter at or below zero. The ended round's waiter
// must return while the next round is still open (it is never ended before
// the check).
TEST(Break24WaitGroup, MisusedDoneAtTheZeroDoesNotHoldTheEndedRoundsWaiter) {
    goro::run(procs(2), [] {});  // a runtime for the plain threads' waits
    const long iters = scaled(20000, 20);
    const auto start = clock_type::now();
    std::atomic<bool> stop{false};
    std::atomic<long> threw{0}, stole{0};
    goro::wait_group* current = nullptr;
    std::atomic<goro::wait_group*> cur{nullptr};
    std::atomic<goro::wait_group*> using_[2] = {nullptr, nullptr};  // hazard pointers
    std::vector<std::thread> misusers;
    for (int m = 0; m < 2; ++m)
        misusers.emplace_back([&, m] {
            while (!stop.load()) {
                goro::wait_group* wg = cur.load();
                if (!wg) {
                    std::this_thread::yield();
                    continue;
                }
                using_[m] = wg;
                if (cur.load() != wg || counter_of(wg_state(*wg)) != 0) {
                    using_[m] = nullptr;
                    std::this_thread::yield();
                    continue;
                }
                {
                    try {
                        wg->done();
                        stole.fetch_add(1);
                        wg->add(1);
                    } catch (const goro::negative_counter_error&) {
                        threw.fetch_add(1);
                    }
                }
                using_[m] = nullptr;
            }
        });
    long n = 0, raced = 0;
    for (; n < iters && time_left(start, 2000ms); ++n) {
        auto wg = std::make_unique<goro::wait_group>();
        current = wg.get();
        wg->add(1);
        std::atomic<bool> returned{false};
        std::thread w([&] {
            wg->wait();
            returned = true;
        });
        if (!spin_until([&] { return wg_waiters(*wg) == 1; })) hung("the waiter did not register");
        cur = current;  // the misusers begin (the counter is 1: they wait)
        std::atomic<bool> go{false};
        std::thread adder([&] {
            while (!go.load()) {
            }
            for (;;) {
                const std::uint64_t s = wg_state(*wg);
                if (counter_of(s) <= 0) {
                    if ((s & 0xffffffffu) != 0) ++raced;
                    wg->add(2);  // the next round
                    return;
                }
            }
        });
        auto done_counted = [&] {
            for (;;) {
                try {
                    wg->done();
                    return;
                } catch (const goro::negative_counter_error&) {
                    std::this_thread::yield();
                }
            }
        };
        std::thread zero([&] {
            go = true;
            done_counted();
        });
        zero.join();
        adder.join();
        const bool in_time = spin_until([&] { return returned.load(); }, 2s);
        cur = nullptr;
        // (A misuser may still hold wg: wait for a quiet state below.)
        if (!in_time)
            hung("iteration " + std::to_string(n) +
                 ": the ended round's waiter held by the next round (misused done()s at the "
                 "zero), state " +
                 std::to_string(counter_of(wg_state(*wg))) + "/" + std::to_string(wg_waiters(*wg)));
        done_counted();
        done_counted();
        w.join();
        // The misusers drop this wait_group before it goes.
        if (!spin_until([&] { return using_[0] != current && using_[1] != current; }))
            hung("a misuser still holds the wait_group");
        EXPECT_EQ(wg_state(*wg), 0u) << "iteration " << n;
        if (::testing::Test::HasFailure()) break;
    }
    stop = true;
    for (auto& t : misusers) t.join();
    EXPECT_GT(n, 0);
    std::printf(
        "%ld iterations, %ld adds saw waiters at <= 0; misused done()s: %ld threw, %ld "
        "stole\n",
        n, raced, threw.load(), stole.load());
}

// Misused done()s hammered on an idle wait_group from six plain threads,
// each whenever it sees the counter at zero (each throws
// negative_counter_error, or steals a count the correct thread just added
// after it looked — never below zero) while a correct thread loops add(1),
// done(). The true counter never goes below zero, so the correct add(1)
// must never throw; a correct done() may throw only when a misuser stole
// its count (as many throws as steals); at the end the counter is zero and
// a wait() returns.
//
// Was a DEFECT, fixed (add() now changes the counter by a CAS that checks
// the result first: a misused done() is never visible to other calls). It was (line numbers below
// as printed in those runs; this comment has moved them): a correct done() throws
// negative_counter_error with its count not stolen, and the counter stays at 1 for good: every
// later wait() hangs. Release, three copies at once, --gtest_repeat=5: failed 13 of 15 runs; one
// copy alone: 4 of 5. (A first version with blind misusers, which stole the stuck count back,
// failed 1 of 15 under TSan.) Output:
//   break24_test.cpp:994: Failure
//   Expected equality of these values:
//     done_threw
//       Which is: 1
//     stole.load()
//       Which is: 0
//   correct done()s that threw vs steals
//   break24_test.cpp:996: Failure
//   Expected equality of these values:
//     left
//       Which is: 1
//     0
//   break24_test.cpp:1002: Failure
//   Value of: goro_test::eventually([&] { return back.load(); }, 1s)
//     Actual: false
//   Expected: true
//   wait() hangs after the loop: counter 1
//   1175293 adds (0 threw); done()s 1 threw; misused: 55743 threw, 0 stole
// Reproduce: cd build/release/tests && ./goro_tests
//   --gtest_filter='Break24*CorrectAddOrDone*' --gtest_repeat=5
// Cause: wait_group.cpp:83/:86 again. A misuser's done() at zero leaves -1
// in the word until its undo; the correct add(1) lands on it (-1 + 1 = 0,
// no throw), the correct done() then computes -1, throws (:85) and undoes
// itself; the misuser's undo then takes the word to 1. The correct pair
// add(1), done() has left +1 that nothing will take back, though neither
// call misused anything: a thrown misuse left the counter changed, and
// wait() hangs for ever.
// Runs of the three tests together before the fix (three copies at
// once): release failed 11 of 15, ASan 4 of 6, TSan 4 of 6.
TEST(Break24WaitGroup, MisusedDonesDoNotMakeACorrectAddOrDoneFail) {
    goro::run(procs(2), [] {});  // a runtime for the plain threads' waits
    goro::wait_group wg;
    std::atomic<bool> stop{false};
    std::atomic<long> threw{0}, stole{0};
    std::vector<std::thread> misusers;
    for (int m = 0; m < 6; ++m)
        misusers.emplace_back([&] {
            while (!stop.load()) {
                if (counter_of(wg_state(wg)) != 0) continue;  // only at zero
                try {
                    wg.done();
                    stole.fetch_add(1);
                } catch (const goro::negative_counter_error&) {
                    threw.fetch_add(1);
                }
            }
        });
    const auto start = clock_type::now();
    long adds = 0, add_threw = 0, done_threw = 0;
    std::string first;
    while (time_left(start, 1000ms)) {
        ++adds;
        try {
            wg.add(1);
        } catch (const goro::negative_counter_error& e) {
            if (add_threw++ == 0) first = e.what();
            continue;
        }
        try {
            wg.done();
        } catch (const goro::negative_counter_error&) {
            ++done_threw;  // a misuser stole the count (or the defect)
        }
    }
    stop = true;
    for (auto& t : misusers) t.join();
    EXPECT_EQ(add_threw, 0) << "a correct add(1) (the true counter >= 0) threw: " << first << " ("
                            << add_threw << " of " << adds << ")";
    EXPECT_EQ(done_threw, stole.load()) << "correct done()s that threw vs steals";
    const std::int64_t left = wg.count();
    EXPECT_EQ(left, 0);
    std::atomic<bool> back{false};
    std::thread w([&] {
        wg.wait();
        back = true;
    });
    EXPECT_TRUE(goro_test::eventually([&] { return back.load(); }, 1s))
        << "wait() hangs after the loop: counter " << left;
    for (std::int64_t c = wg.count(); c > 0; --c) wg.done();  // free the waiter
    w.join();
    std::printf("%ld adds (%ld threw); done()s %ld threw; misused: %ld threw, %ld stole\n", adds,
                add_threw, done_threw, threw.load(), stole.load());
}
