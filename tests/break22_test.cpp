// Hostile tests of the spawn stack, round two (commits 14df65b..9d00d3f:
// a per-worker bounded Chase-Lev deque of 128 entries for goroutines spawned
// by a goroutine, popped newest first after runnext with a streak cap of 8;
// thieves take the oldest plus up to half of the rest; a lone entry after a
// 3 us grace; the monitor's rescue of the oldest entry with its 100 ms gap
// while the last rescued goroutine lives). break21_test.cpp has round one.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/io.hpp"
#include "goro/stats.hpp"
#include "scheduler/scheduler.hpp"
#include "spawn_chain.hpp"
#include "stacks/stack_config.hpp"
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

long ms_since(clk::time_point t0) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0).count());
}

long to_us(clk::time_point t) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

long now_us() {
    return to_us(clk::now());
}

void busy_for(std::chrono::microseconds d) {
    const auto until = clk::now() + d;
    while (clk::now() < until) {
    }
}

// The calling goroutine's worker index.
unsigned worker_index() {
    return goro::detail::this_worker()->index;
}

// Polls pred every millisecond for up to `limit`; in a goroutine with
// goro::sleep_for (goro_test::eventually's std::this_thread::sleep_for
// would hold the worker: at procs=1, everything else).
template <class F>
bool eventually(F pred, std::chrono::milliseconds limit = 5s) {
    const auto end = clk::now() + limit;
    while (clk::now() < end) {
        if (pred()) return true;
        if (goro::in_goroutine())
            goro::sleep_for(1ms);
        else
            std::this_thread::sleep_for(1ms);
    }
    return pred();
}

// Every worker slot's rescued_alive (the monitor's count of goroutines it
// moved out of that worker's spawn stack that have not exited yet).
std::vector<int> rescued_alive_counts() {
    std::vector<int> v;
    goro::detail::scheduler* s = goro::detail::current_scheduler();
    if (!s) return v;
    for (goro::detail::worker* w : s->workers)
        v.push_back(w->rescued_alive.load(std::memory_order_relaxed));
    return v;
}

bool all_zero(const std::vector<int>& v) {
    return std::all_of(v.begin(), v.end(), [](int x) { return x == 0; });
}

std::string show(const std::vector<int>& v) {
    std::string s;
    for (int x : v) s += std::to_string(x) + " ";
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// goro::set_procs called by the spawners themselves, between bursts of
// spawns that sit in their spawn stacks: a spawner whose worker is retired
// by its own call yields (set_procs' contract) with its spawn stack full;
// the retiring worker must hand it on. Every goroutine runs exactly once.
TEST(Break22Procs, SpawnersCallSetProcsThemselves) {
    goro_test::watchdog dog("Break22Procs.SpawnersCallSetProcsThemselves", 60s);
    const long roots = 6, rounds = scaled(40, 8), fan = 60, leaves = 2;
    const long per_round = fan * (1 + leaves);
    tally t(roots * rounds * per_round);
    goro::run(procs(4), [&] {
        goro::wait_group wg;
        for (long r = 0; r < roots; ++r) {
            wg.add(1);
            goro::go([&, r] {
                for (long k = 0; k < rounds; ++k) {
                    const long base = (r * rounds + k) * per_round;
                    for (long i = 0; i < fan; ++i) {
                        wg.add(1);
                        goro::go([&, base, i] {
                            t.hit(base + i * (1 + leaves));
                            for (long j = 0; j < leaves; ++j) {
                                wg.add(1);
                                goro::go([&, base, i, j] {
                                    t.hit(base + i * (1 + leaves) + 1 + j);
                                    wg.done();
                                });
                            }
                            if (i % 5 == 0) goro::yield();
                            wg.done();
                        });
                    }
                    // Without parking first: the fan is still in this
                    // worker's spawn stack (and overflowed into runnext and
                    // the local queue).
                    static constexpr int pattern[] = {1, 4, 2, 1, 3, 1, 4};
                    goro::set_procs(pattern[(r + k) % 7]);
                    dog.pet();
                }
                wg.done();
            });
        }
        wg.wait();
        goro::set_procs(4);
        EXPECT_TRUE(eventually([] { return goro::stats().goroutines_live == 1; }))
            << goro::stats().goroutines_live << " goroutines live";
    });
    t.check("spawners flipping set_procs");
}

// ---------------------------------------------------------------------------
// A goroutine locked to worker 1 (lock_os_thread) spawns and then computes
// without parking while set_procs(1) retires worker 1 under it: its spawns
// sit in a retired worker's spawn stack, which retires only when the locked
// goroutine switches out. Worker 0 (idle) must take them meanwhile: 50 of
// them, and a lone one.
namespace {

// Runs body on a goroutine locked to worker 1 of a procs(2) runtime (tries
// until one lands there); false if none did.
template <class F>
bool on_locked_worker_1(F body) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        goro::set_procs(2);
        auto done = goro::make_chan<bool>(1);
        goro::go([&, done] {
            goro::lock_os_thread();
            const bool here = worker_index() == 1;
            if (here) body();
            goro::unlock_os_thread();
            done.send(here);
        });
        // Every other try, keep this worker busy a moment so that the spawn
        // is likely stolen (this goroutine may run on either worker).
        if (attempt % 2 == 0) busy_for(200us);
        if (*done.recv()) return true;
    }
    return false;
}

}  // namespace

TEST(Break22Procs, RetiredSpawnerThatComputesLeavesItsSpawnsToOthers) {
    for (long children : {50L, 1L}) {
        goro::run(procs(2), [children] {
            std::atomic<long> started{0};
            clk::time_point t0{};
            long all_started_ms = -1;
            const bool ok = on_locked_worker_1([&] {
                goro::set_procs(1);  // worker 1 retires under us (we are locked here)
                t0 = clk::now();
                for (long i = 0; i < children; ++i) goro::go([&] { started.fetch_add(1); });
                while (started.load() < children && clk::now() - t0 < 1s) {
                }
                all_started_ms = ms_since(t0);
            });
            ASSERT_TRUE(ok) << "no goroutine landed on worker 1";
            EXPECT_EQ(started.load(), children);
            EXPECT_LT(all_started_ms, 300)
                << children << " spawns on a retired worker's spawn stack waited " << all_started_ms
                << " ms for its computing goroutine";
            EXPECT_TRUE(eventually([] { return goro::stats().goroutines_live == 1; }));
        });
    }
}

// ---------------------------------------------------------------------------
// The monitor's rescue accounting (worker::rescued_alive, goroutine::
// rescued_from): goroutines rescued from under a spawn chain at procs=1 that
// then migrate (set_procs up, yields: stolen), lock their thread, retire
// their origin's peers, or live on blocked: once every one has exited, every
// worker's count is back to 0 (no leak that would keep the 100 ms gap for
// ever, no underflow), and it was never negative meanwhile.
TEST(Break22Rescue, AccountingSettlesToZeroAfterMigrations) {
    goro::run(procs(2), [] {
        goro::set_procs(1);  // two slots, one taking work
        const int n = 16;
        chain_state c;
        const auto t0 = clk::now();
        c.give_up = t0 + 8s;
        std::atomic<int> started{0}, rescued{0}, negative{0};
        auto release = goro::make_chan<int>();
        goro::wait_group wg;
        for (int i = 0; i < n; ++i) {
            wg.add(1);
            goro::go([&, i, release] {
                if (goro::detail::this_goroutine_record()->rescued_from) rescued.fetch_add(1);
                if (started.fetch_add(1) + 1 == n) c.stop.store(true);
                switch (i % 4) {
                    case 0:
                        break;
                    case 1:
                        goro::lock_os_thread();
                        goro::sleep_for(1ms);
                        goro::unlock_os_thread();
                        break;
                    case 2:
                        goro::set_procs(2);
                        for (int k = 0; k < 20; ++k) goro::yield();
                        goro::sleep_for(1ms);
                        goro::set_procs(1);
                        break;
                    case 3:
                        (void)release.recv();  // lives on until the end
                        break;
                }
                for (int x : rescued_alive_counts())
                    if (x < 0) negative.fetch_add(1);
                wg.done();
            });
        }
        goro::go([&c] { spawn_chain(&c); });
        EXPECT_TRUE(eventually([&] { return started.load() == n; }, 10s))
            << started.load() << " of " << n << " older spawns started in 10 s";
        const long start_ms = ms_since(t0);
        c.stop.store(true);
        release.close();
        wg.wait();
        EXPECT_LT(start_ms, 5000) << "the older spawns took " << start_ms << " ms to start";
        EXPECT_GT(rescued.load(), 0) << "the monitor rescued none: the test did not test";
        EXPECT_EQ(negative.load(), 0);
        EXPECT_TRUE(eventually([] { return goro::stats().goroutines_live == 1; }));
        std::vector<int> counts;
        EXPECT_TRUE(eventually([&] { return all_zero(counts = rescued_alive_counts()); }, 2s))
            << "rescued_alive by worker after every rescued goroutine exited: " << show(counts);
    });
}

// After a long-lived rescued goroutine exits, the rescues go back to one per
// 10 ms: the 100 ms gap must not outlive it. Procs=1: a chain churns; one
// older spawn is rescued and lives 150 ms; then a chain link spawns 20 more
// older ones (which exit at once): about 150 + 20 x 10 ms, not 20 x 100 ms.
TEST(Break22Rescue, GapEndsWithTheRescuedGoroutine) {
    goro::run(procs(1), [] {
        chain_state c;
        const auto t0 = clk::now();
        c.give_up = t0 + 8s;
        std::atomic<int> late_started{0};
        std::atomic<bool> first_done{false}, spawned_late{false};
        clk::time_point late_t0{};
        std::atomic<long> late_end_us{0};
        const int late = 20;
        goro::go([&] {
            goro::sleep_for(150ms);
            first_done.store(true);
        });
        struct link {
            static void run(chain_state* c, std::atomic<bool>* spawned_late,
                            std::atomic<bool>* first_done, clk::time_point* late_t0,
                            std::atomic<long>* late_end_us, std::atomic<int>* late_started,
                            int late) {
                c->links.fetch_add(1, std::memory_order_relaxed);
                if (!spawned_late->load() && first_done->load()) {
                    spawned_late->store(true);
                    *late_t0 = clk::now();
                    for (int i = 0; i < late; ++i)
                        goro::go([=] {
                            const long now = now_us();
                            if (late_started->fetch_add(1) + 1 == late) {
                                late_end_us->store(now);
                                c->stop.store(true);
                            }
                        });
                }
                if (!c->stop.load(std::memory_order_acquire) && clk::now() < c->give_up)
                    goro::go([=] {
                        run(c, spawned_late, first_done, late_t0, late_end_us, late_started, late);
                    });
            }
        };
        goro::go([&] {
            link::run(&c, &spawned_late, &first_done, &late_t0, &late_end_us, &late_started, late);
        });
        EXPECT_TRUE(eventually([&] { return late_started.load() == late; }, 10s))
            << late_started.load() << " of " << late << " started";
        c.stop.store(true);
        EXPECT_TRUE(eventually([] { return goro::stats().goroutines_live == 1; }));
        const long took = (late_end_us.load() - to_us(late_t0)) / 1000;
        // 20 rescues at 10-12 ms each; 100 ms each would be 2 s.
        EXPECT_LT(took, 1000) << "20 older spawns took " << took << " ms to start";
        EXPECT_TRUE(all_zero(rescued_alive_counts())) << show(rescued_alive_counts());
    });
}

// ---------------------------------------------------------------------------
// Every run starts with a pick (stats_test.cpp's PicksAddUpToRuns): with
// goroutines locked to their threads (the pinned queue, steps 4a/4b and a
// retired worker's pick) and spawn stacks stolen from, picks() must still
// equal goroutines_run on each worker once the runtime is quiet.
// Was a defect (since b6efad3, lock_os_thread): picks from the pinned
// queue were counted nowhere (picks() 262 against goroutines_run 1020 on
// worker 0, every run); they count as picks_local now.
TEST(Break22Stats, PicksAddUpToRunsWithLockedGoroutines) {
    goro::run(procs(2), [] {
        goro::wait_group wg;
        for (int i = 0; i < 20; ++i)
            wg.go([] {
                goro::lock_os_thread();
                for (int k = 0; k < 50; ++k) goro::yield();
                goro::unlock_os_thread();
            });
        wg.wait();
        goro::sleep_for(20ms);
        const goro::runtime_stats s = goro::stats();
        for (const goro::worker_stats& w : s.workers)
            EXPECT_EQ(w.picks(), w.goroutines_run)
                << "worker " << w.index << ": runnext " << w.picks_runnext << " spawned "
                << w.picks_spawned << " local " << w.picks_local << " global " << w.picks_global
                << " stolen " << w.picks_stolen;
        EXPECT_EQ(s.total.picks(), s.total.goroutines_run);
    });
}

// The same with spawn trees stolen from (oldest plus half into the thief's
// own spawn stack), without locked goroutines.
TEST(Break22Stats, PicksAddUpToRunsWithSpawnSteals) {
    goro::run(procs(2), [] {
        goro::wait_group wg;
        for (int r = 0; r < 20; ++r) {
            for (int i = 0; i < 300; ++i)
                wg.go([&wg] {
                    busy_for(2us);
                    wg.go([] { goro::yield(); });
                });
            wg.wait();
        }
        goro::sleep_for(20ms);
        const goro::runtime_stats s = goro::stats();
        EXPECT_GT(s.total.picks_spawned, 0u);
        for (const goro::worker_stats& w : s.workers)
            EXPECT_EQ(w.picks(), w.goroutines_run)
                << "worker " << w.index << ": runnext " << w.picks_runnext << " spawned "
                << w.picks_spawned << " local " << w.picks_local << " global " << w.picks_global
                << " stolen " << w.picks_stolen;
    });
}

// ---------------------------------------------------------------------------
// Starvation: `procs` goroutines spawn-and-wait in a tight loop (one child,
// a small tree, an errgroup) while probes measure how late other work runs:
// a 1 ms timer, a pipe made readable by a plain thread, a goroutine spawned
// by a plain thread (the global queue), and a channel send from a plain
// thread. Each must run within 500 ms of being due (typically well under
// 10 ms).
namespace {

struct probe_results {
    std::atomic<long> timer_max_us{0}, io_max_us{0}, global_max_us{0}, chan_max_us{0};
    std::atomic<long> timer_n{0}, io_n{0}, global_n{0}, chan_n{0};
};

void note_max(std::atomic<long>& m, long v) {
    long cur = m.load();
    while (v > cur && !m.compare_exchange_weak(cur, v)) {
    }
}

void spawn_wait_tree(int depth) {
    if (depth == 0) return;
    goro::wait_group wg;
    wg.go([depth] { spawn_wait_tree(depth - 1); });
    wg.go([depth] { spawn_wait_tree(depth - 1); });
    wg.wait();
}

void starve_probe(unsigned p, int mode) {
    probe_results r;
    goro::run(procs(p), [&] {
        std::atomic<bool> stop{false};
        goro::wait_group loops;
        for (unsigned k = 0; k < p; ++k)
            loops.go([&] {
                while (!stop.load(std::memory_order_relaxed)) {
                    if (mode == 0) {
                        goro::wait_group wg;
                        wg.go([] {});
                        wg.wait();
                    } else if (mode == 1) {
                        spawn_wait_tree(4);
                    } else {
                        goro::errgroup g;
                        for (int i = 0; i < 8; ++i) g.go([] { busy_for(1us); });
                        g.wait();
                    }
                }
            });
        // Timer probe.
        goro::wait_group probes;
        probes.go([&] {
            while (!stop.load()) {
                const long due = now_us() + 1000;
                goro::sleep_for(1ms);
                note_max(r.timer_max_us, now_us() - due);
                r.timer_n.fetch_add(1);
            }
        });
        // I/O probe: a plain thread writes its clock into a pipe.
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        probes.go([&] {
            for (;;) {
                long sent = 0;
                const ssize_t got = ::read(fds[0], &sent, sizeof sent);
                if (got == sizeof sent) {
                    if (sent < 0) break;
                    note_max(r.io_max_us, now_us() - sent);
                    r.io_n.fetch_add(1);
                    continue;
                }
                (void)goro::wait_readable(fds[0]);
            }
        });
        auto ch = goro::make_chan<long>(0);
        probes.go([&, ch] {
            for (long sent : ch) {
                note_max(r.chan_max_us, now_us() - sent);
                r.chan_n.fetch_add(1);
            }
        });
        std::thread outside([&, ch] {
            const auto end = clk::now() + 1500ms;
            goro::wait_group spawned;
            while (clk::now() < end) {
                const long t = now_us();
                EXPECT_EQ(::write(fds[1], &t, sizeof t), ssize_t(sizeof t));
                spawned.go([&r, t = now_us()] {
                    note_max(r.global_max_us, now_us() - t);
                    r.global_n.fetch_add(1);
                });
                ch.send(now_us());
                std::this_thread::sleep_for(2ms);
            }
            const long end_mark = -1;
            EXPECT_EQ(::write(fds[1], &end_mark, sizeof end_mark), ssize_t(sizeof end_mark));
            ch.close();
            spawned.wait();
        });
        goro::blocking([&] { outside.join(); });
        stop.store(true);
        probes.wait();
        loops.wait();
        ::close(fds[0]);
        ::close(fds[1]);
    });
    const std::string what = "procs " + std::to_string(p) + " mode " + std::to_string(mode);
    EXPECT_GT(r.timer_n.load(), 10) << what;
    EXPECT_GT(r.io_n.load(), 10) << what;
    EXPECT_GT(r.global_n.load(), 10) << what;
    EXPECT_GT(r.chan_n.load(), 10) << what;
    EXPECT_LT(r.timer_max_us.load(), 500'000) << what << ": a 1 ms timer fired late";
    EXPECT_LT(r.io_max_us.load(), 500'000) << what << ": pipe readiness";
    EXPECT_LT(r.global_max_us.load(), 500'000) << what << ": a plain thread's spawn";
    EXPECT_LT(r.chan_max_us.load(), 500'000) << what << ": a plain thread's send";
    std::printf("[ info ] %s: worst lateness timer %ld us, io %ld us, global %ld us, chan %ld us\n",
                what.c_str(), r.timer_max_us.load(), r.io_max_us.load(), r.global_max_us.load(),
                r.chan_max_us.load());
}

}  // namespace

TEST(Break22Starve, SpawnAndWaitLoopsDoNotStarveTimersIoOrOutsiders) {
    for (unsigned p : {1u, 2u})
        for (int mode : {0, 1, 2}) starve_probe(p, mode);
}

// ---------------------------------------------------------------------------
// Goroutines on the smallest stack (64 KiB) that use half of it and then
// spawn past the spawn stack's 128 (the spawn path: record, ready, the spawn
// stack, runnext's displacement into a full local queue's spill, wakep), in
// a tree 3 deep; every goroutine runs exactly once and the run ends.
namespace {

[[gnu::noinline]] void deep_then_spawn(tally* t, std::atomic<long>* next, goro::wait_group* wg,
                                       int depth) {
    volatile char pad[32 << 10];
    std::memset(const_cast<char*>(pad), 1, sizeof pad);
    const int fan = depth == 0 ? 400 : 6;
    for (int i = 0; i < fan; ++i) {
        const long id = next->fetch_add(1);
        wg->add(1);
        goro::go(goro::spawn_options{.stack_size = goro::detail::min_stack_size},
                 [t, next, wg, depth, id] {
                     t->hit(id);
                     if (depth < 2) deep_then_spawn(t, next, wg, depth + 1);
                     wg->done();
                 });
    }
    asm volatile("" ::"r"(pad) : "memory");
}

}  // namespace

TEST(Break22Stack, TinyStacksSpawnPastTheSpawnStack) {
    for (unsigned p : {1u, 2u}) {
        const long total = 400 + 400 * 6 + 400 * 6 * 6;
        tally t(total);
        std::atomic<long> next{0};
        goro::run(procs(p), [&] {
            goro::wait_group wg;
            wg.add(1);
            goro::go(goro::spawn_options{.stack_size = goro::detail::min_stack_size}, [&] {
                deep_then_spawn(&t, &next, &wg, 0);
                wg.done();
            });
            wg.wait();
        });
        EXPECT_EQ(next.load(), total);
        t.check(("tiny stacks, procs " + std::to_string(p)).c_str());
    }
}

// ---------------------------------------------------------------------------
// Deadlock detection with a goroutine locked to a worker that set_procs
// retired: it spawns the goroutine that will wake it (into the retired
// worker's spawn stack) and parks. Not a deadlock: no report, every round
// completes. Then the real one (the spawns block for good) is reported.
TEST(Break22Deadlock, LockedOnRetiredWorkerWaitsForItsSpawns) {
    goro::options o = procs(2);
    o.detect_deadlock = true;
    long rounds_done = 0;
    EXPECT_NO_THROW(goro::run(o, [&] {
        for (int rep = 0; rep < scaled(30, 5); ++rep) {
            const bool ok = on_locked_worker_1([&] {
                goro::set_procs(1);
                auto ch = goro::make_chan<int>(0);
                for (int i = 0; i < 200; ++i)
                    goro::go([ch] {
                        goro::yield();
                        ch.send(1);
                    });
                long got = 0;
                for (int i = 0; i < 200; ++i) got += *ch.recv();
                EXPECT_EQ(got, 200);
            });
            if (ok) ++rounds_done;
        }
    }));
    EXPECT_GT(rounds_done, 0);
    EXPECT_THROW(goro::run(o,
                           [] {
                               auto never = goro::make_chan<int>(0);
                               (void)on_locked_worker_1([never] {
                                   goro::set_procs(1);
                                   for (int i = 0; i < 200; ++i)
                                       goro::go([never] { never.recv(); });
                               });
                               never.recv();
                           }),
                 goro::deadlock_error);
}

// ---------------------------------------------------------------------------
// run() returns while goroutines locked to their threads have just filled
// their workers' spawn stacks (on every worker, one of them retired) with
// goroutines whose closures hold RAII objects, some of which spawn more in
// their destructors: every closure is destroyed exactly once, each body
// runs at most once, and run() returns.
namespace {

template <int Tag>
struct counted {
    static inline std::atomic<long> made{0}, destroyed{0};
    counted() { made.fetch_add(1); }
    counted(const counted&) { made.fetch_add(1); }
    counted(counted&&) noexcept { made.fetch_add(1); }
    ~counted() { destroyed.fetch_add(1); }
};

struct spawns_on_destroy {
    bool armed = false;
    spawns_on_destroy() = default;
    spawns_on_destroy(const spawns_on_destroy& o) : armed(o.armed) {}
    spawns_on_destroy& operator=(const spawns_on_destroy&) = delete;
    ~spawns_on_destroy() {
        if (!armed || !goro::in_goroutine()) return;
        for (int i = 0; i < 3; ++i) {
            counted<1> c;
            goro::go([c] { goro::yield(); });
        }
    }
};

}  // namespace

TEST(Break22Shutdown, LockedSpawnersFillEveryWorkerAtReturn) {
    for (unsigned p : {2u, 4u}) {
        counted<1>::made = 0;
        counted<1>::destroyed = 0;
        std::atomic<long> bodies{0};
        goro::run(procs(p), [&, p] {
            auto ready = goro::make_chan<int>(8);
            for (unsigned k = 0; k < p * 2; ++k)
                goro::go([&, ready, k] {
                    goro::lock_os_thread();
                    for (int i = 0; i < 400; ++i) {
                        counted<1> c;
                        spawns_on_destroy d;
                        d.armed = i % 50 == 0;
                        goro::go([c, d, &bodies, i] {
                            bodies.fetch_add(1);
                            if (i % 4 == 0) goro::sleep_for(1h);  // unwound at shutdown
                        });
                        d.armed = false;  // the copy in the closure spawns, not this one
                    }
                    ready.send(int(k));
                    if (k == 0) goro::set_procs(1);  // some spawners now on retired workers
                    goro::sleep_for(1h);             // unwound at shutdown
                });
            for (unsigned k = 0; k < p * 2; ++k) (void)ready.recv();
        });
        EXPECT_EQ(counted<1>::made.load(), counted<1>::destroyed.load()) << "procs " << p;
        EXPECT_LE(bodies.load(), long(p) * 2 * 400) << "procs " << p;
    }
    // And the next run works.
    EXPECT_EQ(goro_test::value_through_a_fresh_run(), 42);
}

// ---------------------------------------------------------------------------
// Stress, meant to run as three copies at once (and under the sanitizers):
// trees of spawns from goroutines that lock and unlock their threads, flip
// set_procs, spawn from catch blocks and from destructors, while a chain
// keeps the monitor rescuing. Every tree node started exactly once; the
// rescue counts settle to 0.
namespace {

struct throws_on_even {
    explicit throws_on_even(long i) {
        if (i % 2 == 0) throw std::runtime_error("even");
    }
};

void stress_node(tally* t, std::atomic<long>* next, long limit, goro::wait_group* wg, int depth,
                 std::uint64_t seed) {
    const long id = next->fetch_add(1);
    if (id >= limit) return;
    t->hit(id);
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    const int fan = depth >= 4 ? 0 : int((seed >> 33) % 7);
    const bool lock = (seed >> 40) % 5 == 0;
    if (lock) goro::lock_os_thread();
    for (int i = 0; i < fan; ++i) {
        wg->add(1);
        auto child = [=] {
            stress_node(t, next, limit, wg, depth + 1, seed + std::uint64_t(i) * 977);
            wg->done();
        };
        switch ((seed >> (10 + i)) % 4) {
            case 0:
                goro::go(child);
                break;
            case 1:
                try {
                    throws_on_even e(id + i);
                    goro::go(child);
                } catch (const std::runtime_error&) {
                    goro::go(child);  // spawn from a catch block
                }
                break;
            case 2: {
                struct on_exit {
                    decltype(child) c;
                    ~on_exit() { goro::go(c); }  // spawn from a destructor
                } e{child};
                break;
            }
            default:
                goro::go(goro::spawn_options{.stack_size = goro::detail::min_stack_size}, child);
                break;
        }
    }
    if ((seed >> 50) % 11 == 0) goro::set_procs(int((seed >> 20) % 4) + 1);
    if ((seed >> 45) % 3 == 0) goro::yield();
    if (lock) goro::unlock_os_thread();
}

}  // namespace

TEST(Break22Stress, LockingFlippingTreesUnderRescues) {
    goro_test::watchdog dog("Break22Stress.LockingFlippingTreesUnderRescues", 60s);
    const long limit = scaled(600'000, 30);
    tally t(limit);
    std::atomic<long> next{0};
    goro::run(procs(4), [&] {
        chain_state c;
        c.give_up = clk::now() + 30s;
        goro::go([&c] { spawn_chain(&c); });
        std::uint64_t seed = 12345;
        while (next.load() < limit) {
            goro::wait_group wg;
            for (int r = 0; r < 16; ++r) {
                wg.add(1);
                seed = seed * 2862933555777941757ULL + 3037000493ULL;
                goro::go([&, s = seed] {
                    stress_node(&t, &next, limit, &wg, 0, s);
                    wg.done();
                });
            }
            wg.wait();
            dog.pet();
        }
        c.stop.store(true);
        goro::set_procs(4);
        EXPECT_TRUE(eventually([] { return goro::stats().goroutines_live == 1; }))
            << goro::stats().goroutines_live << " goroutines live";
        std::vector<int> counts;
        EXPECT_TRUE(eventually([&] { return all_zero(counts = rescued_alive_counts()); }, 2s))
            << show(counts);
    });
    t.check("stress trees");
}
