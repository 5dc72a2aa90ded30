// Misuse across the API: each must throw an exception derived from
// std::logic_error whose what() names the misused call, at the call, leaving
// nothing half-done (no goroutine started, no counter changed).
#include <gtest/gtest.h>

#include <climits>
#include <functional>
#include <string>

#include "goro/goro.hpp"
#include "misuse_util.hpp"

using namespace std::chrono_literals;

using goro_test::expect_misuse;

TEST(Misuse, EmptyFunctionsAreRefusedAtTheCall) {
    goro::run([] {
        const std::size_t before = goro::num_goroutines();
        std::function<void()> empty;
        void (*null_fn)() = nullptr;
        expect_misuse([&] { goro::go(empty); }, "goro::go");
        expect_misuse([&] { goro::go(null_fn); }, "goro::go");
        std::function<void(int)> empty1;
        expect_misuse([&] { goro::go(empty1, 1); }, "goro::go");

        goro::wait_group wg;
        expect_misuse([&] { wg.go(empty); }, "goro::wait_group::go");
        EXPECT_EQ(wg.count(), 0);  // the add(1) did not happen

        goro::errgroup g;
        g.set_limit(1);
        expect_misuse([&] { g.go(empty); }, "goro::errgroup::go");
        expect_misuse([&] { (void)g.try_go(empty); }, "goro::errgroup::try_go");
        EXPECT_TRUE(g.try_go([] {}));  // no limit token was taken by the refused calls
        g.wait();

        expect_misuse([&] { (void)goro::after_func(1ms, empty); }, "goro::after_func");
        expect_misuse([&] { (void)goro::context_after_func(goro::background(), empty); },
                      "goro::context_after_func");
        EXPECT_EQ(goro::num_goroutines(), before);
    });
}

TEST(Misuse, ChannelCapacityOutOfRange) {
    expect_misuse([] { (void)goro::make_chan<long>(static_cast<std::size_t>(-1)); },
                  "goro::make_chan");
    expect_misuse([] { (void)goro::make_chan<char>(static_cast<std::size_t>(PTRDIFF_MAX) + 1); },
                  "goro::make_chan");
    int negative = -1;  // Go's make(chan T, -1)
    expect_misuse([&] { (void)goro::make_chan<int>(negative); }, "goro::make_chan");
}

TEST(Misuse, WaitGroupNamesTheCall) {
    goro::wait_group wg;
    expect_misuse([&] { wg.done(); }, "goro::wait_group::done");
    expect_misuse([&] { wg.add(-2); }, "goro::wait_group::add");
    EXPECT_EQ(wg.count(), 0);
    expect_misuse([&] { wg.add(-2); }, "negative counter");
}
