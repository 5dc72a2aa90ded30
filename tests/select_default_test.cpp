// select with a default never takes the default while a case is ready at
// every moment of the call. Two tokens circulate between two buffered
// channels, moved one at a time by one mover, and the selector puts back
// each token it takes before its next select: during a select at least one
// token sits in a channel, so one of the two receive cases is always ready.
// Before, select polled one channel lock at a time and took the default
// when the tokens moved behind its back.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

class SelectDefault : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, SelectDefault, ::testing::Values(2u, 4u, 8u));

TEST_P(SelectDefault, NeverTakenWhileACaseIsReadyThroughout) {
    long defaults = 0, taken = 0;
    goro::run(procs(GetParam()), [&] {
        auto a = goro::make_chan<int>(2), b = goro::make_chan<int>(2);
        a.send(0);
        b.send(1);
        std::atomic<bool> stop{false};
        // A plain thread, so that it moves tokens truly in parallel with the
        // selector whatever the workers do.
        std::thread mover([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                // All of a into b, then all of b into a: each channel is
                // empty at times, never both at once.
                while (auto v = a.try_recv()) b.send(*v);
                while (auto v = b.try_recv()) a.send(*v);
            }
        });
        const long n = scaled(1000000, 10);
        for (long i = 0; i < n; ++i) {
            goro::select(goro::recv_case(a,
                                         [&](std::optional<int> v) {
                                             ++taken;
                                             a.send(*v);
                                         }),
                         goro::recv_case(b,
                                         [&](std::optional<int> v) {
                                             ++taken;
                                             b.send(*v);
                                         }),
                         goro::default_case([&] { ++defaults; }));
        }
        stop = true;
        mover.join();
    });
    EXPECT_EQ(defaults, 0) << "default taken with a case ready throughout (" << taken
                           << " cases taken)";
}
