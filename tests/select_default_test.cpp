// select with a default never takes the default while a case is ready at
// every moment of the call. Four tokens circulate between two buffered
// channels, moved one at a time by two movers, and the selector puts back
// each token it takes: at every moment at least one token sits in a
// channel, so one of the two receive cases is always ready. Before, select
// polled one channel lock at a time and took the default when the tokens
// moved behind its back (about 1 in 500 selects).
#include <gtest/gtest.h>

#include <atomic>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

class SelectDefault : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, SelectDefault, ::testing::Values(2u, 4u, 8u));

TEST_P(SelectDefault, NeverTakenWhileACaseIsReadyThroughout) {
    long defaults = 0, taken = 0;
    goro::run(procs(GetParam()), [&] {
        auto a = goro::make_chan<int>(4), b = goro::make_chan<int>(4);
        for (int t = 0; t < 4; ++t) a.send(t);
        std::atomic<bool> stop{false};
        goro::wait_group movers;
        for (int m = 0; m < 2; ++m)
            movers.go([&, m] {
                while (!stop.load(std::memory_order_relaxed)) {
                    auto from = m ? a : b, to = m ? b : a;
                    if (auto v = from.try_recv()) to.send(*v);
                    goro::yield();
                }
            });
        const long n = scaled(200000, 10);
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
        movers.wait();
    });
    EXPECT_EQ(defaults, 0) << "default taken with a case ready throughout (" << taken
                           << " cases taken)";
}
