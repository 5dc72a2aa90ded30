// Tests of goro::once_func and goro::once_value (Go's sync.OnceFunc and
// sync.OnceValue): at most one run across copies, concurrent first callers
// park (goroutines and plain threads), a throw is rethrown to every caller,
// recursion is refused, unwinding leaves nothing cached.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "goro/goro.hpp"
#include "goro/once_func.hpp"
#include "misuse_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(OnceFunc, RunsOnceAcrossCopies) {
    int runs = 0;
    auto f = goro::once_func([&] { ++runs; });
    auto g = f;  // a copy shares the state
    f();
    g();
    f();
    EXPECT_EQ(runs, 1);
}

TEST(OnceValue, ReturnsTheCachedValue) {
    int runs = 0;
    auto v = goro::once_value([&] {
        ++runs;
        return std::string("config");
    });
    EXPECT_EQ(v(), "config");
    EXPECT_EQ(v(), "config");
    EXPECT_EQ(&v(), &v());  // the same object every time
    EXPECT_EQ(runs, 1);
}

TEST(OnceValue, PairResultIsOnceValues) {
    auto v =
        goro::once_value([] { return std::pair<int, std::error_code>(7, goro::errc::canceled); });
    const auto& [n, err] = v();
    EXPECT_EQ(n, 7);
    EXPECT_EQ(err, goro::errc::canceled);
}

TEST(OnceValue, MoveOnlyValueAndCallable) {
    auto p = std::make_unique<int>(41);
    auto v = goro::once_value([p = std::move(p)] { return std::make_unique<int>(*p + 1); });
    EXPECT_EQ(*v(), 42);
    EXPECT_EQ(v().get(), v().get());
}

// Go's OnceFunc: a panicking f panics with the same value on every call.
TEST(OnceFunc, ThrowIsRethrownToEveryCallerAndNeverRetried) {
    int runs = 0;
    auto f = goro::once_func([&] {
        ++runs;
        throw std::runtime_error("boom");
    });
    std::exception_ptr first, second;
    try {
        f();
    } catch (...) {
        first = std::current_exception();
    }
    try {
        f();
    } catch (...) {
        second = std::current_exception();
    }
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_EQ(first, second);  // the same exception object
    EXPECT_THROW(f(), std::runtime_error);
    EXPECT_EQ(runs, 1);
}

TEST(OnceValue, ThrowIsRethrownToEveryCaller) {
    std::atomic<int> runs{0};
    auto v = goro::once_value([&]() -> int {
        runs.fetch_add(1);
        goro::sleep_for(2ms);
        throw std::logic_error("bad config");
    });
    goro::run(procs(2), [&] {
        std::atomic<int> threw{0};
        goro::wait_group wg;
        for (int i = 0; i < 50; ++i)
            wg.go([&] {
                try {
                    v();
                } catch (const std::logic_error& e) {
                    if (std::string(e.what()) == "bad config") threw.fetch_add(1);
                }
            });
        wg.wait();
        EXPECT_EQ(threw.load(), 50);
    });
    EXPECT_EQ(runs.load(), 1);
}

// f is destroyed once it has run, releasing its captures.
TEST(OnceFunc, ReleasesFAfterTheRun) {
    auto token = std::make_shared<int>(1);
    std::weak_ptr<int> weak = token;
    auto f = goro::once_func([t = std::move(token)] { (void)t; });
    EXPECT_FALSE(weak.expired());
    f();
    EXPECT_TRUE(weak.expired());
}

// Concurrent first calls from goroutines park while f runs (f sleeps: a
// spinning caller would still finish, but on one worker it would never let
// f's goroutine resume — the 1-worker run is the parking check).
TEST(OnceValue, ConcurrentFirstCallsParkUntilTheRunEnds) {
    for (unsigned p : {1u, 2u, 8u}) {
        for (int round = 0; round < scaled(50, 5); ++round) {
            std::atomic<int> runs{0};
            auto v = goro::once_value([&] {
                runs.fetch_add(1);
                goro::sleep_for(1ms);
                return 42;
            });
            goro::run(procs(p), [&] {
                std::atomic<int> ok{0};
                goro::wait_group wg;
                for (int i = 0; i < 64; ++i)
                    wg.go([&, v] {  // copies of the callable
                        if (v() == 42) ok.fetch_add(1);
                    });
                wg.wait();
                EXPECT_EQ(ok.load(), 64);
            });
            ASSERT_EQ(runs.load(), 1) << "procs " << p;
        }
    }
}

// Plain threads and goroutines race for the first call; f blocks until
// everyone has arrived, so the others really wait.
TEST(OnceFunc, PlainThreadsAndGoroutinesWaitForTheRun) {
    for (int round = 0; round < scaled(30, 3); ++round) {
        std::atomic<int> runs{0};
        goro::chan<goro::unit> release = goro::make_chan<goro::unit>();
        auto f = goro::once_func([&] {
            runs.fetch_add(1);
            release.recv();  // until the test lets it finish
        });
        std::atomic<int> returned{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i)
            threads.emplace_back([&] {
                f();
                returned.fetch_add(1);
            });
        goro::run(procs(2), [&] {
            goro::wait_group wg;
            for (int i = 0; i < 16; ++i)
                wg.go([&] {
                    f();
                    returned.fetch_add(1);
                });
            goro::sleep_for(2ms);
            EXPECT_EQ(returned.load(), 0) << "a caller returned before f finished";
            release.close();
            wg.wait();
        });
        for (auto& t : threads) t.join();
        EXPECT_EQ(runs.load(), 1);
        EXPECT_EQ(returned.load(), 20);
    }
}

TEST(OnceFunc, MisuseRecursionIsRefused) {
    std::function<void()> self;
    auto f = goro::once_func([&] { self(); });
    self = f;
    // The inner call is refused; its misuse_error is f's outcome.
    goro_test::expect_misuse([&] { f(); }, "goro::once_func");
    goro_test::expect_misuse([&] { f(); }, "goro::once_func");  // rethrown
    goro::run(procs(1), [] {
        std::function<int()> inner;
        auto v = goro::once_value([&] { return inner() + 1; });
        inner = v;
        goro_test::expect_misuse([&] { v(); }, "goro::once_value");
    });
}

TEST(OnceFunc, MisuseNullFunction) {
    void (*null_fn)() = nullptr;
    goro_test::expect_misuse([&] { goro::once_func(null_fn); }, "goro::once_func");
    std::function<int()> empty;
    goro_test::expect_misuse([&] { goro::once_value(empty); }, "goro::once_value");
}

// The goroutine running f is unwound at shutdown: nothing is cached, the
// next call runs f.
TEST(OnceFunc, UnwoundRunLeavesNothingCached) {
    std::atomic<int> runs{0};
    goro::chan<int> never = goro::make_chan<int>();
    std::atomic<bool> fail_first{true};
    auto v = goro::once_value([&] {
        runs.fetch_add(1);
        if (fail_first.exchange(false)) never.recv();  // parked until unwound
        return 5;
    });
    goro::run(procs(2), [&] {
        goro::go([&] { v(); });
        while (runs.load() == 0) goro::sleep_for(1ms);
    });  // unwinds the goroutine inside f
    EXPECT_EQ(v(), 5);
    EXPECT_EQ(runs.load(), 2);
}

// Stress: many callables, each called first by several goroutines at once.
TEST(OnceValue, StressManyCells) {
    goro::run(procs(8), [] {
        const int cells = static_cast<int>(scaled(2000, 10));
        std::atomic<int> runs{0}, wrong{0};
        goro::wait_group wg;
        for (int c = 0; c < cells; ++c) {
            auto v = goro::once_value([&runs, c] {
                runs.fetch_add(1);
                if (c % 3 == 0) goro::yield();
                return c;
            });
            for (int k = 0; k < 4; ++k)
                wg.go([v, c, &wrong] {
                    if (v() != c) wrong.fetch_add(1);
                });
        }
        wg.wait();
        EXPECT_EQ(runs.load(), cells);
        EXPECT_EQ(wrong.load(), 0);
    });
}
