// tests/queue_race.hpp — one owner thread and two thief threads on a
// scheduler queue (the run queue, the spawn stack): every item the owner
// feeds in must come out exactly once, whoever takes it.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "fibers/goroutine.hpp"
#include "test_util.hpp"

namespace goro_test {

class queue_race {
  public:
    using goroutine = goro::detail::goroutine;

    explicit queue_race(long n) : n_(n), items_(new goroutine[n]), seen_(n) {}

    goroutine* item(long i) { return &items_[i]; }
    // Records one item as taken (by the owner or a thief).
    void take(goroutine* g) {
        const long i = g - items_.get();
        ASSERT_TRUE(i >= 0 && i < n_);
        seen_.hit(i);
    }

    // feed(i) is the owner's step for item i (push it, pop now and then);
    // make_thief() returns one thief's step, which tries one steal, takes
    // what it got and returns whether it got anything; empty() tells when
    // the thieves may stop once the owner is done; drain() is the owner's
    // last pops.
    template <class Feed, class MakeThief, class Empty, class Drain>
    void run(Feed feed, MakeThief make_thief, Empty empty, Drain drain) {
        std::atomic<bool> done{false};
        std::atomic<long> stolen{0};
        std::atomic<int> running{0};
        auto thief = [&] {
            auto steal_once = make_thief();
            running.fetch_add(1);
            while (!done.load(std::memory_order_acquire) || !empty())
                if (steal_once()) stolen.fetch_add(1, std::memory_order_relaxed);
        };
        std::thread t1(thief), t2(thief);
        // Both thieves on a CPU before the owner starts: at load 17 they once
        // got none for the whole run (nothing stolen, the race not exercised).
        while (running.load() < 2) std::this_thread::yield();
        for (long i = 0; i < n_; ++i) {
            feed(i);
            if (i % 512 != 0) continue;
            // Let the thieves in on a loaded machine. Until one has taken
            // something, pause with items in the queue: with only a yield,
            // an ASan CI run once finished with nothing stolen, the thieves
            // never on a CPU while the queue held anything.
            if (stolen.load(std::memory_order_relaxed) == 0)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            else
                std::this_thread::yield();
        }
        done.store(true, std::memory_order_release);
        drain();
        t1.join();
        t2.join();
        seen_.check("owner and two thieves");
        EXPECT_GT(stolen.load(), 0) << "the thieves never got anything: the race was not exercised";
    }

  private:
    long n_;
    std::unique_ptr<goroutine[]> items_;
    tally seen_;
};

}  // namespace goro_test
