// Tests of goro::errgroup: waiting, the first failure (exception or
// error_code), context cancellation, limits, try_go, misuse.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <system_error>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Errgroup, ZeroValueWaitsForAll) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        std::atomic<int> n{0};
        for (int i = 0; i < 100; ++i) g.go([&] { n.fetch_add(1); });
        g.wait();
        EXPECT_EQ(n.load(), 100);
        g.wait();  // again: nothing to wait for, no failure
    });
}

TEST(Errgroup, FirstErrorCodeIsRethrownAsSystemError) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        g.go([]() -> std::error_code { return {}; });
        g.go([]() -> std::error_code { return std::make_error_code(std::errc::io_error); });
        try {
            g.wait();
            FAIL() << "no failure";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::make_error_code(std::errc::io_error));
        }
    });
}

TEST(Errgroup, ExceptionCancelsContextAndIsRethrown) {
    goro::run(procs(2), [] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        std::atomic<bool> saw_cancel{false};
        g.go([ctx = ctx, &saw_cancel] {
            ctx.done().recv();
            saw_cancel = true;
        });
        g.go([] { throw std::runtime_error("task failed"); });
        EXPECT_THROW(g.wait(), std::runtime_error);
        EXPECT_TRUE(saw_cancel.load());
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
    });
}

TEST(Errgroup, ContextCancelledWhenWaitReturns) {
    goro::run(procs(1), [] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        g.go([] {});
        g.wait();
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
    });
}

TEST(Errgroup, LimitCapsConcurrency) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        g.set_limit(3);
        std::atomic<int> running{0}, peak{0}, done{0};
        const int n = static_cast<int>(scaled(10000, 20));
        for (int i = 0; i < n; ++i)
            g.go([&] {
                int now = ++running;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                goro::yield();
                --running;
                ++done;
            });
        g.wait();
        EXPECT_EQ(done.load(), n);
        EXPECT_LE(peak.load(), 3);
        EXPECT_GE(peak.load(), 1);
    });
}

TEST(Errgroup, TryGoRespectsTheLimit) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        g.set_limit(1);
        auto gate = goro::make_chan<goro::unit>();
        EXPECT_TRUE(g.try_go([gate] { gate.recv(); }));
        EXPECT_FALSE(g.try_go([] {}));
        EXPECT_THROW(g.set_limit(5), goro::misuse_error);
        gate.close();
        g.wait();
        EXPECT_TRUE(g.try_go([] {}));
        g.wait();
        g.set_limit(-1);  // no tasks active: allowed
    });
}

TEST(ErrgroupStress, TenThousandTasksWithLimitAndFailures) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            auto [g, ctx] = goro::errgroup::with_context(goro::background());
            g.set_limit(16);
            const int n = static_cast<int>(scaled(10000, 10));
            std::atomic<int> ran{0};
            for (int i = 0; i < n; ++i)
                g.go([i, &ran, ctx = ctx]() -> std::error_code {
                    ran.fetch_add(1);
                    if (i == n / 2) return std::make_error_code(std::errc::interrupted);
                    goro::yield();
                    return {};
                });
            EXPECT_THROW(g.wait(), std::system_error);
            EXPECT_EQ(ran.load(), n);
            EXPECT_EQ(ctx.err(), goro::errc::canceled);
        });
}

TEST(Errgroup, FromAPlainThreadWithoutRun) {
    goro::errgroup g;
    std::atomic<int> n{0};
    for (int i = 0; i < 50; ++i) g.go([&] { n.fetch_add(1); });
    g.go([]() -> std::error_code { return goro::errc::deadline_exceeded; });
    try {
        g.wait();
        FAIL() << "no failure";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), goro::errc::deadline_exceeded);
    }
    EXPECT_EQ(n.load(), 50);
}

TEST(Errgroup, FirstFailureIsTheContextsCause) {
    goro::run(procs(2), [] {
        struct db_down : std::runtime_error {
            db_down() : std::runtime_error("db down") {}
        };
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        auto first_failed = goro::make_chan<goro::unit>();
        g.go([first_failed]() {
            first_failed.close();
            throw db_down();
        });
        g.go([ctx = ctx, first_failed]() -> std::error_code {
            first_failed.recv();
            ctx.done().recv();                                 // cancelled by the first failure
            return std::make_error_code(std::errc::io_error);  // a later failure: dropped
        });
        EXPECT_THROW(g.wait(), db_down);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
        try {
            std::rethrow_exception(goro::cause(ctx));
            FAIL() << "no cause";
        } catch (const db_down&) {
        }
    });
}

TEST(Errgroup, LimitBlocksGoUntilATaskFinishes) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            goro::errgroup g;
            g.set_limit(2);
            auto gate = goro::make_chan<goro::unit>();
            g.go([gate] { gate.recv(); });
            g.go([gate] { gate.recv(); });
            std::atomic<bool> third_started{false};
            auto third_go_returned = goro::make_chan<goro::unit>(1);
            goro::go([&g, &third_started, third_go_returned] {
                g.go([&third_started] { third_started = true; });
                third_go_returned.send(goro::unit{});
            });
            goro::sleep_for(3ms);
            EXPECT_TRUE(third_go_returned.try_recv().empty()) << "go() did not wait for the limit";
            EXPECT_FALSE(third_started.load());
            gate.send(goro::unit{});  // one task finishes: the third may start
            third_go_returned.recv();
            gate.close();
            g.wait();
            EXPECT_TRUE(third_started.load());
        });
}

TEST(Errgroup, ZeroLimitAndNoLimit) {
    goro::run(procs(1), [] {
        goro::errgroup g;
        EXPECT_TRUE(g.try_go([] {}));  // no limit
        g.wait();
        g.set_limit(0);
        EXPECT_FALSE(g.try_go([] {}));  // nothing may run (Go: TryGo false)
        g.set_limit(-1);
        EXPECT_TRUE(g.try_go([] {}));
        g.wait();
    });
}

TEST(ErrgroupStress, ManyGroupsFailingAndWaitingAtOnce) {
    goro::run(procs(2), [] {
        const int groups = static_cast<int>(scaled(200));
        std::atomic<int> rethrown{0};
        goro::wait_group wg;
        for (int i = 0; i < groups; ++i)
            wg.go([i, &rethrown] {
                auto [g, ctx] = goro::errgroup::with_context(goro::background());
                g.set_limit(4);
                for (int k = 0; k < 20; ++k)
                    g.go([k, i, ctx = ctx]() -> std::error_code {
                        if (k == i % 20) return goro::errc::canceled;
                        goro::select(goro::recv_case(ctx.done()),
                                     goro::recv_case(goro::after(std::chrono::microseconds(k))));
                        return {};
                    });
                try {
                    g.wait();
                } catch (const std::system_error&) {
                    rethrown.fetch_add(1);
                }
            });
        wg.wait();
        EXPECT_EQ(rethrown.load(), groups);
    });
}

// wait_error(): Go's `err := g.Wait()` — the first failure returned, not thrown.
TEST(ErrgroupWaitError, EmptyWhenEveryTaskSucceeds) {
    goro::run(procs(2), [] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        std::atomic<int> n{0};
        for (int i = 0; i < 20; ++i) g.go([&] { n.fetch_add(1); });
        g.go([]() -> std::error_code { return {}; });
        goro::errgroup::failure f = g.wait_error();
        EXPECT_FALSE(f);
        EXPECT_EQ(f.code(), std::error_code{});
        EXPECT_EQ(f.exception(), nullptr);
        EXPECT_EQ(f.message(), "");
        EXPECT_EQ(n.load(), 20);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);  // as after wait()
    });
}

TEST(ErrgroupWaitError, ReturnsTheErrorCodeWithoutThrowing) {
    goro::run(procs(2), [] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        g.go([]() -> std::error_code { return std::make_error_code(std::errc::io_error); });
        g.go([ctx = ctx] { ctx.done().recv(); });  // ends once the failure cancels ctx
        goro::errgroup::failure f;
        EXPECT_NO_THROW(f = g.wait_error());
        ASSERT_TRUE(f);
        EXPECT_EQ(f.code(), std::make_error_code(std::errc::io_error));
        EXPECT_TRUE(f == std::make_error_code(std::errc::io_error));
        EXPECT_EQ(f.message(), std::make_error_code(std::errc::io_error).message());
        // The same failure as an exception: a std::system_error with the code.
        std::exception_ptr e = f;
        ASSERT_NE(e, nullptr);
        try {
            std::rethrow_exception(e);
        } catch (const std::system_error& se) {
            EXPECT_EQ(se.code(), std::make_error_code(std::errc::io_error));
        }
        EXPECT_EQ(goro::cause(ctx).code(), std::make_error_code(std::errc::io_error));
    });
}

TEST(ErrgroupWaitError, ReturnsTheThrownException) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        g.go([] { throw std::runtime_error("task 7 failed"); });
        goro::errgroup::failure f = g.wait_error();
        ASSERT_TRUE(f);
        EXPECT_EQ(f.code(), std::error_code{});  // not a code: test f itself
        EXPECT_EQ(f.message(), "task 7 failed");
        EXPECT_THROW(f.rethrow(), std::runtime_error);
        // wait() after wait_error() reports the same failure.
        EXPECT_THROW(g.wait(), std::runtime_error);
    });
}

TEST(ErrgroupWaitError, AThrownSystemErrorGivesItsCode) {
    goro::run(procs(1), [] {
        goro::errgroup g;
        g.go([] { throw std::system_error(goro::make_error_code(goro::errc::deadline_exceeded)); });
        goro::errgroup::failure f = g.wait_error();
        ASSERT_TRUE(f);
        EXPECT_TRUE(f == goro::errc::deadline_exceeded);
        EXPECT_THROW(f.rethrow(), std::system_error);
    });
}

TEST(ErrgroupWaitError, OnlyTheFirstOfManyFailuresIsKept) {
    goro::run(procs(2), [] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        // The later ones fail once the first failure has cancelled ctx.
        for (int i = 0; i < 10; ++i)
            g.go([ctx = ctx] {
                ctx.done().recv();
                throw std::runtime_error("later failure");
            });
        g.go([]() -> std::error_code { return goro::errc::canceled; });
        goro::errgroup::failure f = g.wait_error();
        EXPECT_TRUE(f == goro::errc::canceled);
        EXPECT_EQ(f.message(), "context canceled");
    });
}

// A task returning goro::errc (an error-code enum) is understood: a non-zero
// value is a failure.
TEST(ErrgroupWaitError, TaskReturningGoroErrcFails) {
    goro::run(procs(1), [] {
        goro::errgroup g;
        g.go([] { return goro::errc::deadline_exceeded; });
        EXPECT_TRUE(g.wait_error() == goro::errc::deadline_exceeded);
    });
}

// "changing the limit while tasks run throws misuse_error": also when the
// group had no limit yet. Accepting it let the running tasks go uncounted,
// so more than n ran at once under set_limit(n).
TEST(Errgroup, SetLimitWhileUnlimitedTasksRunIsMisuse) {
    goro::run(procs(2), [] {
        goro::errgroup g;
        auto gate = goro::make_chan<goro::unit>();
        std::atomic<int> running{0}, peak{0};
        auto task = [&, gate] {
            int r = running.fetch_add(1) + 1;
            int p = peak.load();
            while (r > p && !peak.compare_exchange_weak(p, r)) {
            }
            (void)gate.recv();
            running.fetch_sub(1);
        };
        g.go(task);
        while (running.load() == 0) goro::yield();
        try {
            g.set_limit(1);
            ADD_FAILURE() << "set_limit accepted while a task runs";
            g.try_go(task);  // accepted: a second task beside the first
            for (int i = 0; i < 100 && running.load() < 2; ++i) goro::sleep_for(100us);
        } catch (const goro::misuse_error& e) {
            EXPECT_NE(std::string(e.what()).find("goro::errgroup::set_limit"), std::string::npos);
        }
        gate.close();
        g.wait();
        EXPECT_EQ(peak.load(), 1) << "more tasks ran at once than the limit";
        g.set_limit(1);  // nothing runs now: allowed
        EXPECT_TRUE(g.try_go([] {}));
        g.wait();
    });
}
