// Hostile tests of the spawn stack (commit 15a3847: goroutines spawned by a
// goroutine go to a per-worker bounded Chase-Lev deque, popped newest first
// by the owner, stolen oldest first; fairness by a streak cap against the
// local queue and the monitor's 10 ms rescue of the oldest entry).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/testing.hpp"
#include "spawn_chain.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::chain_state;
using goro_test::procs;
using goro_test::scaled;
using goro_test::spawn_chain;
using goro_test::tally;

namespace {

using clk = std::chrono::steady_clock;

// One slot per goroutine of a run: each must be hit exactly once.

// A node spawns `fan` children without parking in between (more than the
// spawn stack's 256 slots at the top level), each of which spawns `fan2`
// leaves, then waits for them all.
void fan_tree(tally* t, long base, long fan, long fan2, goro::wait_group* wg) {
    for (long i = 0; i < fan; ++i) {
        wg->add(1);
        goro::go([=] {
            t->hit(base + i * (fan2 + 1));
            for (long j = 0; j < fan2; ++j) {
                wg->add(1);
                goro::go([=] {
                    t->hit(base + i * (fan2 + 1) + 1 + j);
                    if (j % 7 == 0) goro::yield();
                    wg->done();
                });
            }
            wg->done();
        });
    }
}

// Round r of fan_tree, in a goroutine of its own (its slots start at
// r * fan * (fan2 + 1)), counted in wg.
void fan_round(tally* t, long r, long fan, long fan2, goro::wait_group* wg) {
    wg->add(1);
    goro::go([=] {
        fan_tree(t, r * fan * (fan2 + 1), fan, fan2, wg);
        wg->done();
    });
}

}  // namespace

// Fan-outs that overflow the spawn stack (1000 spawns in a row without a
// park), with stealing at procs 2 and 8: every goroutine runs exactly once.
TEST(Break21Fanout, OverflowingFanOutsRunEachGoroutineOnce) {
    goro_test::watchdog dog("Break21Fanout", 30s);
    for (unsigned p : {1u, 2u, 8u}) {
        const long fan = 1000, fan2 = scaled(40, 4);
        const long rounds = scaled(6, 3);
        tally t(rounds * fan * (fan2 + 1));
        goro::run(procs(p), [&] {
            goro::wait_group wg;
            for (long r = 0; r < rounds; ++r) {
                fan_round(&t, r, fan, fan2, &wg);
            }
            wg.wait();
            dog.pet();
        });
        t.check(("procs " + std::to_string(p)).c_str());
    }
}

// goro::set_procs flipping between 1 and 8 while trees of spawns run (a
// retiring worker hands its spawn stack to the global queue): nothing lost,
// nothing run twice, and the run ends.
TEST(Break21Procs, SetProcsFlipsWhileTreesSpawn) {
    goro_test::watchdog dog("Break21Procs", 30s);
    const long fan = 600, fan2 = scaled(30, 3), rounds = scaled(8, 4);
    tally t(rounds * fan * (fan2 + 1));
    goro::run(procs(8), [&] {
        std::atomic<bool> stop{false};
        goro::wait_group flipper;
        flipper.add(1);
        goro::go([&] {
            for (int i = 0; !stop.load(); ++i) {
                goro::set_procs(i % 2 ? 8 : 1);
                goro::sleep_for(std::chrono::microseconds(200 + (i % 5) * 100));
            }
            goro::set_procs(8);
            flipper.done();
        });
        for (long r = 0; r < rounds; ++r) {
            goro::wait_group wg;
            fan_round(&t, r, fan, fan2, &wg);
            wg.wait();
            dog.pet();
        }
        stop = true;
        flipper.wait();
    });
    t.check("set_procs flips");
}

// A plain thread flips set_procs too, and goroutines locked to their thread
// spawn (retired workers still run them; their spawns must not be stranded
// in a retired worker's spawn stack).
TEST(Break21Procs, LockedGoroutinesSpawnWhileProcsDrop) {
    goro_test::watchdog dog("Break21Procs locked", 30s);
    const long lockers = 8, per = 400;
    tally t(lockers * per * scaled(10, 5));
    const long reps = scaled(10, 5);
    goro::run(procs(8), [&] {
        for (long rep = 0; rep < reps; ++rep) {
            goro::wait_group wg;
            goro::wait_group started;
            started.add(int(lockers));
            for (long l = 0; l < lockers; ++l) {
                wg.add(1);
                goro::go([&, l, rep] {
                    goro::lock_os_thread();
                    started.done();
                    for (long i = 0; i < per; ++i) {
                        wg.add(1);
                        const long id = (rep * lockers + l) * per + i;
                        goro::go([&t, &wg, id] {
                            t.hit(id);
                            wg.done();
                        });
                        if (i % 100 == 99) goro::yield();
                    }
                    goro::unlock_os_thread();
                    wg.done();
                });
            }
            started.wait();
            goro::set_procs(1);
            goro::yield();
            goro::set_procs(8);
            wg.wait();
            dog.pet();
        }
    });
    t.check("locked spawners");
}

namespace {

// Counts its copies made and destroyed; each test has its own Tag, so its
// own counts.
template <int Tag>
struct counted {
    static inline std::atomic<long> made{0}, destroyed{0};
    counted() { made.fetch_add(1); }
    counted(const counted&) { made.fetch_add(1); }
    counted(counted&&) noexcept { made.fetch_add(1); }
    ~counted() { destroyed.fetch_add(1); }
};

std::atomic<long> bodies{0};

}  // namespace

// run() returns while spawn stacks (and the overflow in runnext / the local
// queue) hold goroutines that never started: each closure is destroyed
// exactly once, each body runs at most once, and nothing is left alive.
TEST(Break21Shutdown, RunEndsWithFullSpawnStacks) {
    for (unsigned p : {1u, 2u, 4u}) {
        counted<0>::made = 0;
        counted<0>::destroyed = 0;
        bodies = 0;
        const long n = 1500;
        tally t(n * 4);
        goro::run(procs(p), [&] {
            auto ready = goro::make_chan<int>(4);
            for (int k = 0; k < 4; ++k) {
                goro::go([&t, ready, k] {
                    for (long i = 0; i < n; ++i) {
                        counted<0> c;
                        const long id = k * n + i;
                        goro::go([c, &t, id] {
                            t.hit(id);
                            bodies.fetch_add(1);
                            // Some park (unwound at shutdown), some do not.
                            if (id % 3 == 0) goro::sleep_for(1h);
                        });
                    }
                    ready.send(k);
                });
            }
            for (int k = 0; k < 4; ++k) ready.recv();
            // Return with thousands spawned and (mostly) not started.
        });
        EXPECT_EQ(counted<0>::made.load(), counted<0>::destroyed.load()) << "procs " << p;
        EXPECT_LE(bodies.load(), n * 4) << "procs " << p;
        long twice = 0;
        for (long i = 0; i < n * 4; ++i) twice += t.seen[i].load() > 1;
        EXPECT_EQ(twice, 0) << "procs " << p;
    }
}

namespace {

// Sleeps 2 ms at a time until the chain has made a few links (a loaded CI
// machine can deschedule the workers for longer than one 2 ms sleep, so the
// chain may not have started when the first sleep ends), giving up 2 s after
// t0. A starved sleeper does not come back from the first sleep until the
// chain gives up (5 s), so the caller's bound of 1 s still catches it.
void sleep_while_the_chain_warms_up(const chain_state& c, clk::time_point t0) {
    do goro::sleep_for(2ms);
    while (c.links.load() <= 10 && clk::now() - t0 < 2s);
}

}  // namespace

// A goroutine readied from the worker's loop (a due timer: the local queue)
// at procs=1 while a spawn chain churns: the streak cap gives the local
// queue a turn.
TEST(Break21Starve, TimerReadiedGoroutineRunsUnderSpawnChain) {
    goro::run(procs(1), [] {
        chain_state c;
        const auto t0 = clk::now();
        c.give_up = t0 + 5s;
        clk::time_point woke{};
        goro::wait_group wg;
        wg.add(1);
        goro::go([&] {
            sleep_while_the_chain_warms_up(c, t0);
            woke = clk::now();
            c.stop.store(true);
            wg.done();
        });
        goro::yield();  // the sleeper parks first
        goro::go([&c] { spawn_chain(&c); });
        wg.wait();
        EXPECT_LT(woke - t0, 1s) << "the sleeper waited for the chain to give up";
        EXPECT_GT(c.links.load(), 10);
        for (int i = 0; i < 5000 && goro::stats().goroutines_live != 1; ++i) goro::sleep_for(1ms);
    });
}

// A goroutine locked to its thread (goro::lock_os_thread), readied (by its
// timer) into its worker's pinned queue, at procs=1 while a chain of spawns
// churns (each goroutine spawns its successor and exits). Passes at
// 15a3847^ (6 ms).
//
// Was a defect, fixed (take_spawned's cap now gives the pinned queue its turn
// too). It was: the pinned goroutine never ran until the chain gives up (5 s
// here; for ever with an unbounded chain). find_runnable takes step 3b (the
// spawn stack) before 4a/4b (the pinned queue); take_spawned's streak cap
// gives a turn only to a non-empty *local* queue (spawn_streak is reset to 0
// while rq is empty), and pick_next_directly hands a pinned-queue-non-empty
// pick to the loop, which takes 3b again. The monitor's rescue does not
// fire either: each pop takes the stack's last entry, which advances `top`,
// so the oldest entry never "sits still". Before 15a3847 a spawn went to
// runnext, whose cap of 3 sent the chain to the local queue and let 4a in.
// Reproduced every run (release build): it waits the chain's full 5 s.
namespace {

// procs workers, `chains` spawn chains started after a goroutine locked its
// thread and went to sleep for 2 ms: it must wake within 1 s.
void locked_under_chains(unsigned p, int chains) {
    goro::run(procs(p), [chains] {
        chain_state c;
        const auto t0 = clk::now();
        c.give_up = t0 + 5s;
        clk::time_point woke{};
        goro::wait_group wg, locked;
        wg.add(1);
        locked.add(1);
        goro::go([&] {
            goro::lock_os_thread();
            locked.done();
            sleep_while_the_chain_warms_up(c, t0);
            woke = clk::now();
            c.stop.store(true);
            goro::unlock_os_thread();
            wg.done();
        });
        locked.wait();
        for (int i = 0; i < chains; ++i) goro::go([&c] { spawn_chain(&c); });
        wg.wait();
        EXPECT_LT(woke - t0, 1s) << "the locked goroutine waited " << (woke - t0) / 1ms
                                 << " ms, for the spawn chain to give up";
        EXPECT_GT(c.links.load(), 10);
        for (int i = 0; i < 5000 && goro::stats().goroutines_live != 1; ++i) goro::sleep_for(1ms);
    });
}

}  // namespace

TEST(Break21Starve, LockedGoroutineRunsUnderSpawnChain) {
    locked_under_chains(1, 1);
}

// The same at procs=2 with two chains (one per worker once a thief has
// taken one; no worker is idle, so nothing steals the one on the locked
// goroutine's worker). Was a defect, fixed as the one above. It was
// intermittent: the locked goroutine waited
// 5000, 3993 and 5003 ms in 3 of 4 runs (the 4th: 241 ms); at 15a3847^:
// 6-14 ms in 4 of 4. Release build, 2 shared cores.
TEST(Break21Starve, LockedGoroutineRunsUnderTwoSpawnChainsAtProcs2) {
    locked_under_chains(2, 2);
}

// The same chain in a goro::testing bubble (one worker; the monitor's 10 ms
// rescue is off there, so that the schedule does not depend on real time).
//
// Was a defect, fixed (in a bubble spawns take the runnext path, not the
// spawn stack). It was: a goroutine spawned before the chain never started while the chain
// churns: in a bubble nothing ever moves a spawn stack's oldest entry
// (no thief, no rescue), so a bubble whose goroutines spin by spawning
// (a retry loop `go`ing its next attempt until a flag the older goroutine
// sets) live-locks. Before 15a3847 the older spawn ran within 4 picks
// (runnext's cap of 3 sent it to the local queue; the test passes at
// 15a3847^ in 5 ms). Reproduced every run: 23M links in 3 s, then it starts.
TEST(Break21Bubble, OlderSpawnStartsUnderSpawnChain) {
    chain_state c;
    const auto t0 = clk::now();
    c.give_up = t0 + 3s;
    std::atomic<long> links_when_started{-1};
    goro::testing::bubble([&] {
        goro::wait_group wg;
        wg.add(1);
        goro::go([&] {
            links_when_started = c.links.load();
            c.stop.store(true);
            wg.done();
        });
        goro::go([&c] { spawn_chain(&c); });
        wg.wait();
    });
    EXPECT_GE(links_when_started.load(), 0);
    EXPECT_LT(links_when_started.load(), 1000)
        << "the older spawn started only after the chain gave up (" << c.links.load()
        << " links in " << (clk::now() - t0) / 1ms << " ms)";
}

namespace {

// A tree of spawns whose goroutines race over select: the order recorded is
// the schedule.
std::vector<int> bubble_tree_order(std::uint64_t seed) {
    std::vector<int> order;
    goro::testing::bubble(
        [&] {
            auto a = goro::make_chan<int>(0), b = goro::make_chan<int>(0);
            goro::wait_group wg;
            for (int i = 0; i < 300; ++i) {
                wg.add(1);
                goro::go([&, i] {
                    if (i % 3 == 0) {
                        for (int j = 0; j < 3; ++j) {
                            wg.add(1);
                            goro::go([&, i, j] {
                                goro::sleep_for(std::chrono::milliseconds(j));
                                (j % 2 ? a : b).send(i * 10 + j);
                                wg.done();
                            });
                        }
                    }
                    (i % 2 ? a : b).send(i);
                    wg.done();
                });
            }
            goro::go([&] {
                for (;;) {
                    int v = -1;
                    bool closed = false;
                    goro::select(goro::recv_case(a,
                                                 [&](std::optional<int> x) {
                                                     if (x)
                                                         v = *x;
                                                     else
                                                         closed = true;
                                                 }),
                                 goro::recv_case(b, [&](std::optional<int> x) {
                                     if (x)
                                         v = *x;
                                     else
                                         closed = true;
                                 }));
                    if (closed) return;
                    order.push_back(v);
                }
            });
            wg.wait();
            goro::testing::wait();
            a.close();
            b.close();
            goro::testing::wait();
        },
        goro::testing::bubble_options{.seed = seed});
    return order;
}

}  // namespace

// Same seed, same schedule, with spawn trees (the spawn stack's order).
TEST(Break21Bubble, SpawnTreeScheduleIsDeterministic) {
    const auto x = bubble_tree_order(7), y = bubble_tree_order(7);
    EXPECT_EQ(x.size(), 600u);
    EXPECT_EQ(x, y);
}

// A bubble whose goroutines all block for good, many of them still in the
// spawn stack when the main goroutine blocks: a deadlock, reported.
TEST(Break21Bubble, DeadlockWithSpawnStackFullIsDetected) {
    EXPECT_THROW(goro::testing::bubble([] {
                     auto never = goro::make_chan<int>(0);
                     for (int i = 0; i < 600; ++i) goro::go([never] { never.recv(); });
                     never.recv();
                 }),
                 goro::deadlock_error);
}

// Not a deadlock: the main goroutine blocks while the work that will wake it
// sits (unstarted) in the spawn stack.
TEST(Break21Bubble, NoFalseDeadlockWhileSpawnStackHoldsTheWaker) {
    long got = 0;
    goro::testing::bubble([&] {
        auto ch = goro::make_chan<int>(0);
        for (int i = 0; i < 600; ++i) goro::go([ch] { ch.send(1); });
        for (int i = 0; i < 600; ++i) got += *ch.recv();
    });
    EXPECT_EQ(got, 600);
}

// options::detect_deadlock with goroutines in spawn stacks: no false
// positive while the senders wait unstarted (the main goroutine blocks right
// after spawning them), and a real deadlock among them is reported.
TEST(Break21Deadlock, DetectionSeesSpawnStacks) {
    goro::options o = procs(2);
    o.detect_deadlock = true;
    for (int rep = 0; rep < scaled(20, 4); ++rep) {
        long got = 0;
        EXPECT_NO_THROW(goro::run(o, [&] {
            auto ch = goro::make_chan<int>(0);
            goro::go([ch] {
                for (int i = 0; i < 700; ++i)
                    goro::go([ch] {
                        goro::yield();
                        ch.send(1);
                    });
            });
            for (int i = 0; i < 700; ++i) got += *ch.recv();
        }));
        EXPECT_EQ(got, 700);
    }
    EXPECT_THROW(goro::run(o,
                           [] {
                               auto never = goro::make_chan<int>(0);
                               goro::go([never] {
                                   for (int i = 0; i < 700; ++i)
                                       goro::go([never] { never.recv(); });
                               });
                               never.recv();
                           }),
                 goro::deadlock_error);
}

// A goroutine that spawns and then computes (up to 2 s) without parking, at
// procs=2: the spawned goroutine is stolen (the spawn wakes a helper), not
// left for the spawner to finish. The bound is generous: an ASan CI run on
// an overloaded machine (load 7 on 2 cores) saw the spinner itself
// descheduled for 100 ms, and the child run after 144-400 ms.
TEST(Break21Stuck, SpawnThenComputeChildIsStolen) {
    goro::run(procs(2), [] {
        for (int rep = 0; rep < 5; ++rep) {
            std::atomic<bool> child_ran{false};
            clk::time_point t0, seen{};
            goro::wait_group wg;
            wg.add(1);
            goro::go([&] {
                t0 = clk::now();
                goro::go([&] { child_ran = true; });
                while (!child_ran.load() && clk::now() - t0 < 2s) {
                }
                seen = clk::now();
                wg.done();
            });
            wg.wait();
            EXPECT_TRUE(child_ran.load()) << "rep " << rep;
            EXPECT_LT(seen - t0, 1s) << "rep " << rep;
        }
    });
}

// Spawning inside catch blocks and destructors, during normal runs and the
// shutdown unwind: every goroutine started once, the run ends.
TEST(Break21Exceptions, SpawnInCatchAndDestructor) {
    for (unsigned p : {1u, 2u}) {
        std::atomic<long> ran{0};
        const long n = 300;
        goro::run(procs(p), [&] {
            goro::wait_group wg;
            struct spawns_on_exit {
                std::atomic<long>* ran;
                goro::wait_group* wg;
                ~spawns_on_exit() {
                    for (int i = 0; i < 3; ++i) {
                        wg->add(1);
                        goro::go([r = ran, w = wg] {
                            r->fetch_add(1);
                            w->done();
                        });
                    }
                }
            };
            for (long i = 0; i < n; ++i) {
                wg.add(1);
                goro::go([&] {
                    try {
                        spawns_on_exit s{&ran, &wg};
                        throw std::runtime_error("x");
                    } catch (const std::exception&) {
                        wg.add(1);
                        goro::go([&] {
                            ran.fetch_add(1);
                            wg.done();
                        });
                        goro::yield();
                    }
                    wg.done();
                });
            }
            wg.wait();
        });
        EXPECT_EQ(ran.load(), n * 4) << "procs " << p;
    }
}

// Three copies of a stress: spawn trees on threads and goroutines at once,
// plain threads spawning into the runtime, goro::blocking calls inside.
TEST(Break21Stress, MixedSpawnersPlainThreadsAndBlocking) {
    goro_test::watchdog dog("Break21Stress", 40s);
    const long threads = 3, per_thread = scaled(2000, 10);
    const long fan = 400, fan2 = scaled(10, 2), rounds = scaled(5, 5);
    tally t(rounds * fan * (fan2 + 1) + threads * per_thread);
    const long plain_base = rounds * fan * (fan2 + 1);
    goro::run(procs(4), [&] {
        goro::wait_group wg;
        std::vector<std::thread> ts;
        wg.add(int(threads));
        for (long k = 0; k < threads; ++k)
            ts.emplace_back([&, k] {
                for (long i = 0; i < per_thread; ++i) {
                    wg.add(1);
                    const long id = plain_base + k * per_thread + i;
                    goro::go([&, id] {
                        if (id % 50 == 0) goro::blocking([] { std::this_thread::yield(); });
                        t.hit(id);
                        wg.done();
                    });
                }
                wg.done();
            });
        for (long r = 0; r < rounds; ++r) {
            wg.add(1);
            goro::go([&, r] {
                fan_tree(&t, r * fan * (fan2 + 1), fan, fan2, &wg);
                if (r % 2) goro::blocking([] { std::this_thread::sleep_for(1ms); });
                wg.done();
            });
        }
        wg.wait();
        dog.pet();
        for (auto& th : ts) th.join();
    });
    t.check("mixed");
}

// Many goroutines spawned before a spawn chain at procs=1 (each link spawns
// its successor and exits): all 200 must start within 4 s.
//
// Reported as a defect (the last one starts after ~2.1 s, 10.5 ms each; at
// 15a3847^, with spawns in the FIFO local queue, 5 ms) and kept by design:
// the monitor hands on one older entry per 10 ms while the spawn stack's
// oldest end stands still. A faster rescue (one more at every 2 ms look)
// started all 200 in 440 ms but undid the depth-first order of trees of
// spawns (scheduler/monitor.cpp). 4 s is the design's 2 s, twice.
TEST(Break21Starve, ManyOlderSpawnsStartUnderSpawnChain) {
    goro::run(procs(1), [] {
        chain_state c;
        const auto t0 = clk::now();
        c.give_up = t0 + 8s;
        const int n = 200;
        std::atomic<int> started{0};
        clk::time_point last{};
        goro::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i)
            goro::go([&] {
                if (started.fetch_add(1) + 1 == n) {
                    last = clk::now();
                    c.stop.store(true);
                }
                wg.done();
            });
        goro::go([&c] { spawn_chain(&c); });
        wg.wait();
        EXPECT_LT(last - t0, 4s) << "the last of " << n << " older spawns started after "
                                 << (last - t0) / 1ms << " ms";
        for (int i = 0; i < 5000 && goro::stats().goroutines_live != 1; ++i) goro::sleep_for(1ms);
    });
}

namespace {

std::atomic<long> dtor_spawned_ran{0};
using dtor_counted = counted<1>;

// Its destructor spawns 300 goroutines (more than a spawn stack holds)
// without parking.
struct spawner_on_unwind {
    ~spawner_on_unwind() {
        for (int i = 0; i < 300; ++i) {
            dtor_counted c;
            goro::go([c] {
                dtor_spawned_ran.fetch_add(1);
                goro::yield();
            });
        }
    }
};

}  // namespace

// The shutdown unwind runs destructors that spawn: those goroutines land in
// the spawn stacks during the shutdown and must still be run or unwound,
// each closure destroyed once, and run() must return.
TEST(Break21Shutdown, DestructorsSpawnDuringUnwind) {
    for (unsigned p : {1u, 2u, 8u}) {
        dtor_spawned_ran = 0;
        dtor_counted::made = 0;
        dtor_counted::destroyed = 0;
        const int parkers = 20;
        goro::run(procs(p), [&] {
            goro::wait_group parked;
            parked.add(parkers);
            for (int i = 0; i < parkers; ++i)
                goro::go([&] {
                    spawner_on_unwind s;
                    parked.done();
                    goro::sleep_for(1h);
                });
            parked.wait();
        });
        EXPECT_EQ(dtor_counted::made.load(), dtor_counted::destroyed.load()) << "procs " << p;
        EXPECT_LE(dtor_spawned_ran.load(), 300 * parkers) << "procs " << p;
    }
}

namespace {

std::atomic<bool> spin_stop{false};
std::atomic<long> spin_children_ran{0};
using spin_counted = counted<2>;

}  // namespace

// A goroutine fills its worker's spawn stack (and overflows it) and then
// never parks: the shutdown gives its worker up as lost; the other worker
// must take the goroutines out of the lost worker's spawn stack and unwind
// them (closures destroyed once), run() returns, and the next run works.
TEST(Break21Shutdown, SpinnerLeavesAFullSpawnStack) {
    testing::internal::CaptureStderr();
    std::atomic<bool> spawned{false};
    const auto t0 = clk::now();
    goro::run(procs(2), [&] {
        goro::go([&] {
            for (int i = 0; i < 400; ++i) {
                spin_counted c;
                goro::go([c] {
                    spin_children_ran.fetch_add(1);
                    goro::sleep_for(1h);
                });
            }
            spawned = true;
            while (!spin_stop.load(std::memory_order_relaxed)) {
            }
        });
        while (!spawned.load()) goro::sleep_for(100us);
    });
    const auto took = clk::now() - t0;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_LT(took, 10s);
    EXPECT_EQ(spin_counted::made.load(), spin_counted::destroyed.load()) << err;
    int v = 0;
    goro::run(procs(2), [&] {
        auto ch = goro::make_chan<int>(0);
        goro::go([ch] { ch.send(42); });
        v = *ch.recv();
    });
    EXPECT_EQ(v, 42);
    spin_stop = true;
}

namespace {

struct rnd_tree {
    tally* t;
    std::atomic<long> next_id{0};
    long limit;
    goro::wait_group wg;
};

std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

void rnd_node(rnd_tree* r, long id, int depth) {
    r->t->hit(id);
    const std::uint64_t h = mix(std::uint64_t(id) * 7919 + std::uint64_t(depth));
    long kids = 0;
    if (depth < 6) kids = (h % 16 == 0) ? 300 : long(h % 4);
    for (long k = 0; k < kids; ++k) {
        const long cid = r->next_id.fetch_add(1);
        if (cid >= r->limit) break;
        r->wg.add(1);
        goro::go([r, cid, depth] { rnd_node(r, cid, depth + 1); });
        if (h % 5 == 0 && k % 64 == 63) goro::yield();
    }
    if (h % 7 == 0) goro::sleep_for(std::chrono::microseconds(h % 50));
    r->wg.done();
}

}  // namespace

// Random trees (bursts of 300 spawns, yields, short sleeps) while a plain
// thread flips set_procs among 1, 2 and 8: every goroutine started exactly
// once. Meant to run as three copies at once.
TEST(Break21Stress, RandomTreesWhileProcsFlipFromAPlainThread) {
    goro_test::watchdog dog("Break21Stress random", 40s);
    const long limit = scaled(150000, 10);
    tally t(limit);
    rnd_tree r;
    r.t = &t;
    r.limit = limit;
    std::atomic<bool> stop{false};
    goro::run(procs(8), [&] {
        std::thread flipper([&] {
            const int ps[] = {1, 8, 2, 8, 1, 2};
            for (int i = 0; !stop.load(); ++i) {
                goro::set_procs(ps[i % 6]);
                std::this_thread::sleep_for(std::chrono::microseconds(300 + (i % 7) * 200));
            }
        });
        const auto t0 = clk::now();
        while (r.next_id.load() < limit && clk::now() - t0 < 20s) {
            const long id = r.next_id.fetch_add(1);
            if (id >= limit) break;
            r.wg.add(1);
            goro::go([&r, id] { rnd_node(&r, id, 0); });
            if (id % 16 == 0) {
                r.wg.wait();
                dog.pet();
            }
        }
        r.wg.wait();
        stop = true;
        flipper.join();
        goro::set_procs(8);
    });
    const long used = std::min(r.next_id.load(), limit);
    long lost = 0, twice = 0;
    for (long i = 0; i < used; ++i) {
        lost += t.seen[i].load() == 0;
        twice += t.seen[i].load() > 1;
    }
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(twice, 0);
    EXPECT_GT(used, limit / 2);
}

// run()'s main goroutine calls goro::exit with thousands of goroutines still
// in spawn stacks (and overflowed to runnext / the local queue): they all
// run to completion (not unwound) and run() returns once the last exits;
// procs 1, 2 and 8.
TEST(Break21Exit, MainExitsWithFullSpawnStacks) {
    for (unsigned p : {1u, 2u, 8u}) {
        const long n = 3000;
        tally t(n);
        std::atomic<long> finished{0};
        const auto t0 = clk::now();
        goro::run(procs(p), [&] {
            goro::go([&] {
                for (long i = 0; i < n; ++i)
                    goro::go([&, i] {
                        t.hit(i);
                        goro::yield();
                        goro::sleep_for(std::chrono::microseconds(i % 5));
                        finished.fetch_add(1);
                    });
            });
            goro::yield();
            goro::exit();
        });
        EXPECT_LT(clk::now() - t0, 20s);
        EXPECT_EQ(finished.load(), n) << "procs " << p;
        t.check(("exit, procs " + std::to_string(p)).c_str());
    }
}

// goro::testing::wait() returns only once the goroutines waiting unstarted
// in the spawn stack (and its overflow) have run and blocked.
TEST(Break21Bubble, WaitCoversSpawnStack) {
    long after_wait = -1;
    goro::testing::bubble([&] {
        std::atomic<long> started{0};
        auto never = goro::make_chan<int>(0);
        for (int i = 0; i < 400; ++i)
            goro::go([&started, never] {
                for (int j = 0; j < 3; ++j) goro::go([&started] { started.fetch_add(1); });
                started.fetch_add(1);
                never.recv();
            });
        goro::testing::wait();
        after_wait = started.load();
        never.close();
    });
    EXPECT_EQ(after_wait, 1600);
}

// Run after run of the same seed: the same schedule, however the worker's
// first looks fell against run()'s caller pushing main (a look that found
// nothing and then, without sleeping, saw main pushed used to count for the
// periodic steps and shifted the whole schedule by one pick: it failed in
// one CI run of SpawnTreeScheduleIsDeterministic; with a 3 ms delay put in
// that window, one run in three). Without the fix this test failed 1 run in
// 5 or 6 (release); with it, 10 runs of 400 bubbles each gave one schedule.
TEST(Break21Bubble, ScheduleDoesNotDependOnTheWorkersFirstLooks) {
    const auto first = bubble_tree_order(11);
    int differ = 0;
    for (int i = 0; i < goro_test::scaled(400, 5); ++i) differ += bubble_tree_order(11) != first;
    EXPECT_EQ(differ, 0);
}
