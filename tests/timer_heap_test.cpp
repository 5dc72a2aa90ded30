// The runtime's timer heap on its own: random pushes, removals and batched
// pops checked against a reference multiset, and the slot-table invariants
// (a node knows whether it is in the heap; slots are reused).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "scheduler/timer_heap.hpp"

using goro::detail::timer_heap;
using goro::detail::timer_node;

TEST(TimerHeap, RandomOperationsMatchAReferenceModel) {
    constexpr int nodes = 512;
    std::vector<timer_node> pool(nodes);
    std::multimap<std::int64_t, timer_node*> model;  // when -> node
    std::vector<std::int64_t> when_of(nodes, -1);
    timer_heap heap;
    std::mt19937_64 rng(12345);
    std::int64_t now = 0;

    auto index_of = [&](timer_node* t) { return static_cast<std::size_t>(t - pool.data()); };
    auto model_erase = [&](timer_node* t) {
        auto range = model.equal_range(when_of[index_of(t)]);
        for (auto it = range.first; it != range.second; ++it)
            if (it->second == t) {
                model.erase(it);
                return;
            }
        FAIL() << "node missing from the model";
    };

    for (int step = 0; step < 200000; ++step) {
        timer_node* t = &pool[rng() % nodes];
        switch (rng() % 4) {
            case 0:
            case 1: {  // start, or move a pending node
                if (timer_heap::contains(t)) {
                    heap.remove(t);
                    model_erase(t);
                }
                std::int64_t when = now + static_cast<std::int64_t>(rng() % 1000);
                heap.push(t, when);
                when_of[index_of(t)] = when;
                model.emplace(when, t);
                break;
            }
            case 2:  // stop
                if (timer_heap::contains(t)) {
                    heap.remove(t);
                    model_erase(t);
                }
                break;
            case 3: {  // time passes; due nodes leave earliest first, at most 8 at once
                now += static_cast<std::int64_t>(rng() % 50);
                timer_node* out[8];
                std::size_t n = heap.pop_due(now, out, 8);
                for (std::size_t i = 0; i < n; ++i) {
                    ASSERT_FALSE(timer_heap::contains(out[i]));
                    ASSERT_FALSE(model.empty());
                    // Equal deadlines may leave in any order; the deadline must match.
                    ASSERT_EQ(when_of[index_of(out[i])], model.begin()->first);
                    ASSERT_LE(when_of[index_of(out[i])], now);
                    model_erase(out[i]);
                }
                if (n < 8 && !model.empty()) {
                    ASSERT_GT(model.begin()->first, now);  // nothing due was left behind
                }
                break;
            }
        }
        ASSERT_EQ(heap.size(), model.size());
        if (!model.empty()) {
            ASSERT_EQ(heap.top_when(), model.begin()->first);
        }
    }

    std::size_t cleared = 0;
    heap.clear([&](timer_node* t) {
        EXPECT_FALSE(timer_heap::contains(t));
        ++cleared;
    });
    EXPECT_EQ(cleared, model.size());
    EXPECT_TRUE(heap.empty());
    for (auto& t : pool) EXPECT_FALSE(timer_heap::contains(&t));
}

TEST(TimerHeap, PopDueTakesOnlyWhatIsDue) {
    std::vector<timer_node> pool(10);
    timer_heap heap;
    for (int i = 0; i < 10; ++i) heap.push(&pool[i], 100 - 10 * i);  // 100, 90, .., 10
    timer_node* out[16];
    ASSERT_EQ(heap.pop_due(5, out, 16), 0u);
    ASSERT_EQ(heap.pop_due(35, out, 16), 3u);  // 10, 20, 30
    EXPECT_EQ(out[0], &pool[9]);
    EXPECT_EQ(out[1], &pool[8]);
    EXPECT_EQ(out[2], &pool[7]);
    ASSERT_EQ(heap.pop_due(1000, out, 2), 2u);  // the batch limit holds
    EXPECT_EQ(out[0], &pool[6]);
    EXPECT_EQ(heap.size(), 5u);
    EXPECT_EQ(heap.top_when(), 60);
    // A popped node can go straight back in (a periodic timer re-armed).
    heap.push(out[0], 1);
    EXPECT_EQ(heap.top(), &pool[6]);
}
