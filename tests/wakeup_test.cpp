// Wake-ups: a readied goroutine runs within a bounded time whenever a worker
// is idle, whatever its readier does next. Before, ready() put it in the
// readier's runnext and woke nobody, so a readier that kept its CPU
// (spinning, a blocking system call, waiting on a std::future) starved it:
// observed stuck for 2 s with procs = 2.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

// How long the readied goroutine took to run while its readier did `hog`
// without parking; gives up after 5 s.
template <class Hog>
std::chrono::nanoseconds readied_runs_within(Hog hog) {
    std::chrono::nanoseconds took{};
    goro::run(procs(2), [&] {
        for (int round = 0; round < 20; ++round) {
            auto ch = goro::make_chan<int>();
            std::atomic<bool> ran{false};
            goro::go([&, ch] {
                ch.recv();
                ran = true;
            });
            goro::sleep_for(1ms);  // it parks; the other worker goes idle
            auto start = std::chrono::steady_clock::now();
            ch.send(1);  // readies it (into this worker's runnext)
            hog(ran);    // and keeps this worker
            auto t = std::chrono::steady_clock::now() - start;
            if (t > took) took = t;
            if (!ran) return;
        }
    });
    return took;
}

}  // namespace

TEST(Wakeup, ReadierThatSpins) {
    auto took = readied_runs_within([](std::atomic<bool>& ran) {
        auto until = std::chrono::steady_clock::now() + 5s;
        while (!ran && std::chrono::steady_clock::now() < until) {
        }
    });
    EXPECT_LT(took, 1s) << "the readied goroutine waited behind a spinning readier";
}

TEST(Wakeup, ReadierInABlockingCall) {
    auto took = readied_runs_within([](std::atomic<bool>& ran) {
        for (int i = 0; i < 500 && !ran; ++i) std::this_thread::sleep_for(10ms);
    });
    EXPECT_LT(took, 1s) << "the readied goroutine waited behind a blocked readier";
}

TEST(Wakeup, ReadierWaitingOnAFuture) {
    auto took = readied_runs_within([](std::atomic<bool>& ran) {
        auto f = std::async(std::launch::async, [&] {
            for (int i = 0; i < 500 && !ran; ++i) std::this_thread::sleep_for(10ms);
        });
        f.wait();
    });
    EXPECT_LT(took, 1s) << "the readied goroutine waited behind a readier blocked on a future";
}
