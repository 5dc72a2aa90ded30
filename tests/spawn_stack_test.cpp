// The spawn stack (scheduler/spawn_stack.hpp): a tiny stack hammered by its
// owner and two thieves; a tree of spawns running depth first; and a
// goroutine spawned under an endless stream of newer spawns still starting.
#define GORO_ASSERTS 1  // check the spawn stack's invariants in this test
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "goro/goro.hpp"
#include "queue_race.hpp"
#include "scheduler/spawn_stack.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

// A 4-slot stack: the owner pushes (taking what does not fit itself) and
// pops, mostly down to empty, so that it races the thieves for the last
// entry; two thieves take the oldest. Every item must come out exactly once.
TEST(SpawnStackRace, FourSlotsOwnerAndTwoThieves) {
    goro_test::queue_race race(scaled(400000, 10));
    goro::detail::basic_spawn_stack<4> owner;
    auto drain = [&] {
        while (goro::detail::goroutine* g = owner.pop()) race.take(g);
    };
    race.run(
        [&](long i) {
            if (!owner.push(race.item(i))) race.take(race.item(i));
            if (i % 2 == 1) drain();
        },
        [&] {
            return [&] {
                goro::detail::goroutine* g = owner.steal();
                if (g) race.take(g);
                return g != nullptr;
            };
        },
        [&] { return owner.empty(); }, drain);
}

TEST(SpawnStack, OwnerTakesNewestFirstThievesOldest) {
    goro::detail::basic_spawn_stack<8> s;
    goro::detail::goroutine g[9];
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(s.push(&g[i]));
    EXPECT_FALSE(s.push(&g[8])) << "a full stack must refuse";
    EXPECT_EQ(s.size(), 8u);
    EXPECT_EQ(s.pop(), &g[7]);
    EXPECT_EQ(s.steal(), &g[0]);
    EXPECT_EQ(s.pop(), &g[6]);
    EXPECT_EQ(s.steal(), &g[1]);
    EXPECT_EQ(s.size(), 4u);
    while (s.pop()) {
    }
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.steal(), nullptr);
    EXPECT_EQ(s.pop(), nullptr);
}

namespace {

std::atomic<long> tree_live{0}, tree_peak{0};

void tree_node(goro::send_chan<long> out, long leaves, long div) {
    const long live = tree_live.fetch_add(1) + 1;
    long peak = tree_peak.load();
    while (live > peak && !tree_peak.compare_exchange_weak(peak, live)) {
    }
    long sum = 1;
    if (leaves > 1) {
        auto ch = goro::make_chan<long>(std::size_t(div));
        for (long i = 0; i < div; ++i)
            goro::go([ch, leaves, div] { tree_node(ch, leaves / div, div); });
        for (long i = 0; i < div; ++i) sum += *ch.recv();
    }
    tree_live.fetch_sub(1);
    out.send(sum);
}

}  // namespace

// Skynet's shape: with the spawns run newest first, only about a path of the
// tree has started and not finished at any time. Run breadth first (a FIFO
// local queue, as before the spawn stack), thousands had.
TEST(SpawnStack, TreeOfSpawnsRunsDepthFirst) {
    for (unsigned p : {1u, 2u}) {
        tree_live = 0;
        tree_peak = 0;
        // Under TSan the full tree took 16 s.
        const long leaves = goro_test::sanitized ? 10000 : 100000, div = 10;
        long nodes = 0;
        const auto t0 = std::chrono::steady_clock::now();
        goro::run(procs(p), [&] {
            auto ch = goro::make_chan<long>(1);
            goro::go([ch] { tree_node(ch, leaves, div); });
            nodes = *ch.recv();
        });
        const long ms = long((std::chrono::steady_clock::now() - t0) / 1ms);
        EXPECT_EQ(nodes, leaves / 9 * 10 + 1) << "procs " << p;  // 11111 or 111111
        // Started and not finished: about a path of the tree, 6 deep (10-11
        // measured), and a few more paths at procs=2 (thieves start one each
        // time they take a spawn stack's oldest entry). A monitor rescue (a
        // spawn stack's oldest entry to the global queue when that end has
        // not moved for 10 ms) opens one more path while the rescued
        // goroutine lives (10-20 started in it), and the next waits 100 ms for it: on a loaded
        // machine or under a sanitizer, where the tree takes seconds, that
        // adds up. Breadth first, the tree had over 2,000 within 50 ms.
        const long open_paths = long(p) * (ms / 100 + 1);
        EXPECT_LT(tree_peak.load(), (p == 1 ? 60 : 400) + 20 * open_paths)
            << "procs " << p << ", " << ms << " ms";
    }
}

namespace {

// Spawns its successor and ends, until told to stop (or for 5 s, so that a
// failure ends): the spawn stack's newest entry is always replaced before
// anything older gets a turn.
struct chain_state {
    std::atomic<bool> stop{false};
    std::atomic<long> links{0};
    std::chrono::steady_clock::time_point give_up;
};

void spawn_chain(chain_state* c) {
    c->links.fetch_add(1, std::memory_order_relaxed);
    if (!c->stop.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < c->give_up)
        goro::go([c] { spawn_chain(c); });
}

}  // namespace

// At procs=1 nothing steals: the monitor hands the spawn stack's oldest entry
// on once that end has not moved for 10 ms. Without that the first goroutine would start
// only when the chain gives up, 5 s later.
TEST(SpawnStack, OldestSpawnStartsUnderAStreamOfNewerOnes) {
    goro::run(procs(1), [] {
        chain_state c;
        const auto t0 = std::chrono::steady_clock::now();
        c.give_up = t0 + 5s;
        std::chrono::steady_clock::time_point started;
        goro::wait_group wg;
        wg.add(1);
        goro::go([&] {
            started = std::chrono::steady_clock::now();
            c.stop.store(true, std::memory_order_release);
            wg.done();
        });
        goro::go([&c] { spawn_chain(&c); });
        wg.wait();  // main parks; the chain (the newest) runs first
        EXPECT_LT(started - t0, 2s) << "the oldest spawn waited for the chain to give up";
        EXPECT_GT(c.links.load(), 1)
            << "the chain never ran ahead of it: the case was not exercised";
        // The chain ends at its next link (a goroutine's sleep: a thread's
        // would hold the only worker).
        for (int i = 0; i < 5000 && goro::stats().goroutines_live != 1; ++i) goro::sleep_for(1ms);
        EXPECT_EQ(goro::stats().goroutines_live, 1);
    });
}
