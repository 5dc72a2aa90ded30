// Tests of goro::singleflight::group (golang.org/x/sync/singleflight):
// duplicates wait and share one run, exceptions reach every waiter, forget
// starts a new call, recursion is refused, and a stress over many keys.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/singleflight.hpp"
#include "misuse_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Singleflight, SingleCallerIsNotShared) {
    goro::singleflight::group<std::string, int> g;
    auto r = g.do_call("a", [] { return 1; });
    EXPECT_EQ(r.value, 1);
    EXPECT_FALSE(r.shared);
    // Finished calls are not cached: the next one runs fn again.
    auto r2 = g.do_call("a", [] { return 2; });
    EXPECT_EQ(r2.value, 2);
}

// n goroutines ask for one key while fn is held up: fn runs once (exactly
// once on one worker, where every caller reaches do_call before the main
// goroutine releases fn; at most a few times on 8) and all share its value.
TEST(Singleflight, DuplicatesWaitAndShare) {
    for (unsigned p : {1u, 8u}) {
        goro::run(procs(p), [p] {
            goro::singleflight::group<int, std::string> g;
            goro::chan<goro::unit> release = goro::make_chan<goro::unit>();
            std::atomic<int> runs{0}, arrived{0}, got{0}, shared{0};
            const int n = 64;
            goro::wait_group wg;
            for (int i = 0; i < n; ++i)
                wg.go([&] {
                    arrived.fetch_add(1);
                    auto r = g.do_call(7, [&] {
                        runs.fetch_add(1);
                        release.recv();
                        return std::string("seven");
                    });
                    if (r.value == "seven") got.fetch_add(1);
                    if (r.shared) shared.fetch_add(1);
                });
            while (arrived.load() < n) goro::sleep_for(1ms);
            goro::sleep_for(10ms);
            release.close();
            wg.wait();
            EXPECT_EQ(got.load(), n);
            if (p == 1) {
                EXPECT_EQ(runs.load(), 1);
                EXPECT_EQ(shared.load(), n);
            } else {
                EXPECT_GE(runs.load(), 1);
                EXPECT_LT(runs.load(), n / 2) << "duplicates were not suppressed";
            }
        });
    }
}

TEST(Singleflight, ExceptionReachesEveryWaiter) {
    goro::run(procs(2), [] {
        goro::singleflight::group<int, int> g;
        goro::chan<goro::unit> release = goro::make_chan<goro::unit>();
        std::atomic<int> runs{0}, arrived{0}, caught{0};
        const int n = 20;
        std::vector<std::exception_ptr> seen(n);
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                arrived.fetch_add(1);
                try {
                    g.do_call(1, [&]() -> int {
                        runs.fetch_add(1);
                        release.recv();
                        throw std::runtime_error("fetch failed");
                    });
                } catch (const std::runtime_error&) {
                    seen[i] = std::current_exception();
                    caught.fetch_add(1);
                }
            });
        while (arrived.load() < n) goro::sleep_for(1ms);
        goro::sleep_for(10ms);
        release.close();
        wg.wait();
        EXPECT_EQ(caught.load(), n);
        // Callers of one call rethrow one exception object.
        int same_as_first = 0;
        for (auto& e : seen) same_as_first += e == seen[0];
        EXPECT_GE(same_as_first, n - runs.load() + 1);
    });
}

TEST(Singleflight, ForgetStartsANewCall) {
    goro::run(procs(2), [] {
        goro::singleflight::group<std::string, int> g;
        goro::chan<goro::unit> release_first = goro::make_chan<goro::unit>();
        std::atomic<bool> first_running{false};
        std::atomic<int> first_result{0};
        goro::wait_group wg;
        wg.go([&] {
            first_result = g.do_call("k", [&] {
                                first_running = true;
                                release_first.recv();
                                return 1;
                            }).value;
        });
        while (!first_running.load()) goro::sleep_for(1ms);
        g.forget("k");
        // Not joined: runs its own fn at once (the first is still held up).
        auto r = g.do_call("k", [] { return 2; });
        EXPECT_EQ(r.value, 2);
        EXPECT_FALSE(r.shared);
        release_first.close();
        wg.wait();
        EXPECT_EQ(first_result.load(), 1);
        // The first call's end did not remove the second's entry wrongly:
        // the key is free now.
        EXPECT_EQ(g.do_call("k", [] { return 3; }).value, 3);
    });
}

TEST(Singleflight, PlainThreadsShareWithGoroutines) {
    goro::singleflight::group<int, int> g;
    goro::chan<goro::unit> release = goro::make_chan<goro::unit>();
    std::atomic<int> runs{0}, arrived{0}, got{0};
    auto fn = [&] {
        runs.fetch_add(1);
        release.recv();
        return 99;
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            arrived.fetch_add(1);
            if (g.do_call(5, fn).value == 99) got.fetch_add(1);
        });
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i)
            wg.go([&] {
                arrived.fetch_add(1);
                if (g.do_call(5, fn).value == 99) got.fetch_add(1);
            });
        while (arrived.load() < 12) goro::sleep_for(1ms);
        goro::sleep_for(10ms);
        release.close();
        wg.wait();
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(got.load(), 12);
    EXPECT_LT(runs.load(), 6);
}

TEST(Singleflight, MisuseRecursionOnItsOwnKey) {
    goro::singleflight::group<int, int> g;
    goro_test::expect_misuse(
        [&] { g.do_call(1, [&] { return g.do_call(1, [] { return 0; }).value; }); },
        "goro::singleflight::group::do_call");
    // Another key from inside fn is fine.
    EXPECT_EQ(g.do_call(1, [&] { return g.do_call(2, [] { return 4; }).value + 1; }).value, 5);
    // And the group still works for the key that failed.
    EXPECT_EQ(g.do_call(1, [] { return 6; }).value, 6);
}

TEST(Singleflight, MisuseNullFunction) {
    goro::singleflight::group<int, int> g;
    int (*null_fn)() = nullptr;
    goro_test::expect_misuse([&] { g.do_call(1, null_fn); }, "goro::singleflight::group::do_call");
}

// The goroutine running fn is unwound at shutdown: its waiters are not
// stranded; a plain-thread waiter runs its own fn.
TEST(Singleflight, UnwoundRunnerHandsOverToAWaiter) {
    goro::singleflight::group<int, int> g;
    goro::chan<goro::unit> never = goro::make_chan<goro::unit>();
    std::atomic<bool> running{false};
    int thread_result = 0;
    std::thread waiter;
    goro::run(procs(2), [&] {
        goro::go([&] {
            g.do_call(1, [&] {
                running = true;
                never.recv();  // until unwound
                return 1;
            });
        });
        while (!running.load()) goro::sleep_for(1ms);
        waiter = std::thread([&] { thread_result = g.do_call(1, [] { return 2; }).value; });
        goro::sleep_for(5ms);
    });
    waiter.join();
    // The thread either joined the unwound call and then ran its own fn, or
    // arrived late: either way it got its own value.
    EXPECT_EQ(thread_result, 2);
}

// Hostile round 13: a run that ends with no result (goro::exit in fn) left
// its call in flight, and the next lone caller, joining it as a duplicate,
// was told `shared` although nobody else got its value.
TEST(Singleflight, LoneCallerAfterAnExitedRunIsNotShared) {
    goro::run(procs(2), [] {
        goro::singleflight::group<int, int> g;
        goro::wait_group wg;
        wg.go([&] { g.do_call(7, []() -> int { goro::exit(); }); });
        wg.wait();
        auto r = g.do_call(7, [] { return 42; });
        EXPECT_EQ(r.value, 42);
        EXPECT_FALSE(r.shared) << "one caller got the value";
        // A duplicate that waited for the exiting run and then ran its own
        // fn, alone: not shared either.
        goro::chan<goro::unit> go_on = goro::make_chan<goro::unit>();
        std::atomic<bool> running{false};
        wg.go([&] {
            g.do_call(8, [&]() -> int {
                running = true;
                go_on.recv();
                goro::exit();
            });
        });
        while (!running.load()) goro::sleep_for(1ms);
        goro::singleflight::result<int> r2;
        goro::wait_group dup;
        dup.go([&] { r2 = g.do_call(8, [] { return 8; }); });
        goro::sleep_for(10ms);  // the duplicate joins the call (else it runs its own: same result)
        go_on.send(goro::unit{});
        dup.wait();
        wg.wait();
        EXPECT_EQ(r2.value, 8);
        EXPECT_FALSE(r2.shared) << "one caller got the value";
    });
}

// Many keys, many callers, fn yielding: every caller gets its key's value,
// and no key is left behind (a later call runs fn again).
TEST(Singleflight, StressManyKeys) {
    for (unsigned p : {1u, 2u, 8u}) {
        goro::run(procs(p), [] {
            goro::singleflight::group<int, long> g;
            const int keys = 64;
            const int callers = static_cast<int>(scaled(4000, 10));
            std::atomic<int> wrong{0};
            std::atomic<long> runs{0};
            goro::wait_group wg;
            for (int i = 0; i < callers; ++i)
                wg.go([&, i] {
                    int k = i % keys;
                    auto r = g.do_call(k, [&, k] {
                        runs.fetch_add(1);
                        goro::yield();
                        return static_cast<long>(k) * 3;
                    });
                    if (r.value != k * 3) wrong.fetch_add(1);
                });
            wg.wait();
            EXPECT_EQ(wrong.load(), 0);
            EXPECT_GE(runs.load(), keys);
            EXPECT_LE(runs.load(), callers);
            for (int k = 0; k < keys; ++k) {
                auto r = g.do_call(k, [] { return -1L; });
                ASSERT_EQ(r.value, -1) << "key " << k << " still in flight after every call ended";
                ASSERT_FALSE(r.shared);
            }
        });
    }
}
