// Tests of goro::context: cancellation down the tree (never up), deadlines,
// values, causes, without_cancel, context_after_func, stop_token interop,
// cleanup of short-lived children, and races of cancel with completion.
#include <gtest/gtest.h>

#include <atomic>
#include <stop_token>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {
goro::context_key<int> goro_ctx_key;
// Waits (generously) for d to close; false if it stays open.
bool closes_within(const goro::recv_chan<goro::unit>& d, goro::clock::duration limit = 5s) {
    return goro::select(goro::recv_case(d), goro::recv_case(goro::after(limit))) == 0;
}
bool is_done(const goro::context& ctx) {
    return ctx.done().try_recv().closed();
}
}  // namespace

TEST(Context, BackgroundNeverCancels) {
    auto bg = goro::background();
    EXPECT_TRUE(bg.done().is_nil());
    EXPECT_FALSE(bg.err());
    EXPECT_FALSE(bg.deadline().has_value());
    EXPECT_FALSE(goro::cause(bg));
    EXPECT_TRUE(goro::todo().done().is_nil());
}

TEST(Context, CancelPropagatesDownNeverUp) {
    auto [parent, cancel_parent] = goro::with_cancel(goro::background());
    auto [child, cancel_child] = goro::with_cancel(parent);
    auto [grandchild, cancel_gc] = goro::with_cancel(child);
    cancel_child();
    EXPECT_TRUE(is_done(child));
    EXPECT_TRUE(is_done(grandchild));
    EXPECT_EQ(grandchild.err(), goro::errc::canceled);
    EXPECT_FALSE(is_done(parent));
    EXPECT_FALSE(parent.err());
    cancel_child();  // idempotent
    cancel_parent();
    EXPECT_EQ(parent.err(), goro::errc::canceled);
    cancel_gc();
    EXPECT_EQ(std::string(parent.err().category().name()), "goro");
    EXPECT_EQ(parent.err().message(), "context canceled");
}

TEST(Context, ChildOfCancelledParentIsBornCancelled) {
    auto [parent, cancel] = goro::with_cancel(goro::background());
    cancel();
    auto [child, c2] = goro::with_cancel(parent);
    EXPECT_TRUE(is_done(child));
    EXPECT_EQ(child.err(), goro::errc::canceled);
}

TEST(Context, TimeoutFiresWithDeadlineExceeded) {
    goro::run(procs(2), [] {
        auto t0 = goro::clock::now();
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 15ms);
        ASSERT_TRUE(ctx.deadline().has_value());
        ctx.done().recv();  // blocks until the deadline
        EXPECT_GE(goro::clock::now() - t0, 15ms);
        EXPECT_EQ(ctx.err(), goro::errc::deadline_exceeded);
        EXPECT_EQ(goro::cause(ctx), goro::errc::deadline_exceeded);
        cancel();
        EXPECT_EQ(ctx.err(), goro::errc::deadline_exceeded);  // first reason stays
    });
}

TEST(Context, ChildDeadlineNeverOutlivesParent) {
    auto [parent, c1] = goro::with_timeout(goro::background(), 1h);
    auto [child, c2] = goro::with_timeout(parent, 10h);
    EXPECT_EQ(child.deadline(), parent.deadline());
    auto [past, c3] = goro::with_deadline(goro::background(), goro::clock::now() - 1s);
    EXPECT_EQ(past.err(), goro::errc::deadline_exceeded);
    c1();
    EXPECT_EQ(child.err(), goro::errc::canceled);
}

TEST(Context, SelectOnDone) {
    goro::run(procs(2), [] {
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        auto never = goro::make_chan<int>();
        goro::go([cancel = cancel] {
            goro::sleep_for(5ms);
            cancel();
        });
        auto i = goro::select(goro::recv_case(never), goro::recv_case(ctx.done()));
        EXPECT_EQ(i, 1u);
    });
}

TEST(Context, ValuesAreTypedAndSearchedUpTheChain) {
    static goro::context_key<int> user_id;
    static goro::context_key<std::string> trace;
    auto a = goro::with_value(goro::background(), user_id, 42);
    auto [b, cancel] = goro::with_cancel(a);
    auto c = goro::with_value(b, trace, std::string("t-1"));
    ASSERT_NE(c.value(user_id), nullptr);
    EXPECT_EQ(*c.value(user_id), 42);
    EXPECT_EQ(*c.value(trace), "t-1");
    EXPECT_EQ(a.value(trace), nullptr);
    auto shadow = goro::with_value(c, user_id, 7);
    EXPECT_EQ(*shadow.value(user_id), 7);
    EXPECT_EQ(*c.value(user_id), 42);
    cancel();
    EXPECT_TRUE(is_done(c));  // a value context follows its parent's cancellation
}

TEST(Context, CauseCarriesTheReason) {
    auto [ctx, cancel] = goro::with_cancel_cause(goro::background());
    EXPECT_FALSE(goro::cause(ctx));
    cancel(std::make_error_code(std::errc::timed_out));
    EXPECT_EQ(ctx.err(), goro::errc::canceled);
    EXPECT_EQ(goro::cause(ctx), std::make_error_code(std::errc::timed_out));
    auto [child, c2] = goro::with_cancel(ctx);
    EXPECT_EQ(goro::cause(child), std::make_error_code(std::errc::timed_out));

    auto [ctx2, cancel2] = goro::with_cancel_cause(goro::background());
    cancel2(std::make_exception_ptr(std::runtime_error("db down")));
    try {
        std::rethrow_exception(goro::cause(ctx2));
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "db down");
    }
    auto [ctx3, cancel3] = goro::with_cancel(goro::background());
    cancel3();
    EXPECT_EQ(goro::cause(ctx3), goro::errc::canceled);
}

TEST(Context, WithoutCancelKeepsValuesDropsCancellation) {
    static goro::context_key<int> k;
    auto [parent, cancel] = goro::with_timeout(goro::with_value(goro::background(), k, 1), 1h);
    auto w = goro::without_cancel(parent);
    auto [child, c2] = goro::with_cancel(w);
    cancel();
    EXPECT_TRUE(w.done().is_nil());
    EXPECT_FALSE(w.err());
    EXPECT_FALSE(w.deadline().has_value());
    EXPECT_EQ(*w.value(k), 1);
    EXPECT_FALSE(is_done(child));
    c2();
}

TEST(Context, AfterFuncRunsOnCancelAndCanBeStopped) {
    goro::run(procs(2), [] {
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        auto ran = goro::make_chan<std::uint64_t>(2);
        auto stop1 = goro::context_after_func(ctx, [ran] { ran.send(goro::this_goroutine::id()); });
        auto stop2 = goro::context_after_func(ctx, [ran] { ran.send(0); });
        EXPECT_TRUE(stop2());
        cancel();
        auto id = ran.recv();
        EXPECT_NE(*id, 0u);  // ran in its own goroutine
        EXPECT_FALSE(stop1());
        goro::sleep_for(5ms);
        EXPECT_TRUE(ran.try_recv().empty()) << "the stopped func ran";
        // Registered after cancellation: runs at once.
        goro::context_after_func(ctx, [ran] { ran.send(9); });
        EXPECT_EQ(*ran.recv(), 9u);
    });
}

TEST(Context, StopTokenInterop) {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::stop_token tok = ctx.stop_token();
    EXPECT_FALSE(tok.stop_requested());
    cancel();
    EXPECT_TRUE(tok.stop_requested());

    std::stop_source src;
    auto [ctx2, cancel2] = goro::with_stop_token(goro::background(), src.get_token());
    EXPECT_FALSE(ctx2.err());
    src.request_stop();
    EXPECT_EQ(ctx2.err(), goro::errc::canceled);
    std::jthread t([c = ctx2](std::stop_token) { c.done().recv(); });
}

// A goroutine that polls ctx.stop_token() and sees the stop sees what the
// canceller did before cancelling: from goroutines, from a plain thread, and
// through a child whose parent is cancelled. (TSan's view of it, with goro's
// own request_stop() the only one linked in, is checked by
// tests/sanitizer_consumer: this binary also calls request_stop() itself.)
TEST(Context, StopTokenOrdersWhatTheCancellerDidBefore) {
    goro::run(procs(2), [] {
        for (int round = 0; round < static_cast<int>(scaled(300, 4)); ++round) {
            auto [parent, cancel_parent] = goro::with_cancel(goro::background());
            auto [ctx, cancel] = goro::with_cancel(parent);
            std::stop_token tok = ctx.stop_token();
            int written = 0;  // plain: ordered only by the stop
            goro::wait_group wg;
            int seen = -1;
            wg.go([&seen, &written, tok] {
                while (!tok.stop_requested()) goro::yield();
                seen = written;
            });
            auto finish = [&written, round, c = cancel, cp = cancel_parent] {
                written = round + 1;
                if (round % 2)
                    c();
                else
                    cp();
            };
            if (round % 3 == 0) {
                std::thread t(finish);
                wg.wait();
                t.join();
            } else {
                wg.go(finish);
                wg.wait();
            }
            ASSERT_EQ(seen, round + 1);
            cancel();
            cancel_parent();
        }
    });
}

TEST(Context, ShortLivedChildrenDoNotAccumulate) {
    auto [parent, cancel] = goro::with_cancel(goro::background());
    std::weak_ptr<goro::detail::context_node> first;
    for (int i = 0; i < 10000; ++i) {
        auto [child, c] = goro::with_cancel(parent);
        if (i == 0) first = child.node();
        if (i % 2) c();  // half cancelled, half just dropped
    }
    EXPECT_TRUE(first.expired());
    cancel();
}

TEST(Context, TreeOfHundredThousandCancelsCheaply) {
    auto [root, cancel] = goro::with_cancel(goro::background());
    std::vector<goro::context> leaves;
    std::vector<goro::context> level{root};
    const int fan = 10;
    int depth = goro_test::sanitized ? 4 : 5;
    for (int d = 0; d < depth; ++d) {
        std::vector<goro::context> next;
        for (auto& c : level)
            for (int i = 0; i < fan; ++i) next.push_back(goro::with_cancel(c).first);
        level.swap(next);
    }
    auto t0 = goro::clock::now();
    cancel();
    for (auto& c : level) ASSERT_EQ(c.err(), goro::errc::canceled);
    EXPECT_LT(goro::clock::now() - t0, 10s);  // generous: catches O(n^2)
}

TEST(ContextStress, CancelRacingCompletion) {
    goro::run(procs(2), [] {
        const int n = static_cast<int>(scaled(2000));
        std::atomic<int> cancelled{0}, completed{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i) {
            auto [ctx, cancel] =
                goro::with_timeout(goro::background(), std::chrono::microseconds(i % 50));
            auto result = goro::make_chan<int>(1);
            wg.go([result] {
                goro::yield();
                result.send(1);
            });
            wg.go([ctx = ctx, cancel = cancel, result, &cancelled, &completed] {
                goro::select(goro::recv_case(result, [&](auto) { completed.fetch_add(1); }),
                             goro::recv_case(ctx.done(), [&](auto) { cancelled.fetch_add(1); }));
                cancel();
            });
            if (i % 3 == 0) cancel();
        }
        wg.wait();
        EXPECT_EQ(cancelled.load() + completed.load(), n);
    });
}

TEST(ContextStress, CancelFromManyThreads) {
    for (int r = 0; r < static_cast<int>(scaled(200)); ++r) {
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        std::vector<goro::context> kids;
        for (int i = 0; i < 20; ++i) kids.push_back(goro::with_cancel(ctx).first);
        std::vector<std::thread> ts;
        for (int i = 0; i < 4; ++i) ts.emplace_back([c = cancel] { c(); });
        for (auto& t : ts) t.join();
        for (auto& k : kids) ASSERT_EQ(k.err(), goro::errc::canceled);
    }
}

// Go keeps a child whose cancel was never called in its parent until the
// parent is cancelled; goro drops the child but keeps what is still watched.
TEST(Context, DroppedChildStillDeliversToWhatWatchesIt) {
    goro::run(procs(2), [] {
        auto [parent, cancel_parent] = goro::with_cancel(goro::background());
        goro::recv_chan<goro::unit> done;
        std::stop_token tok;
        auto ran = goro::make_chan<int>(1);
        {
            auto [child, cancel_child] = goro::with_cancel(parent);
            auto grandchild = goro::with_value(goro::with_cancel(child).first, goro_ctx_key, 1);
            done = grandchild.done();
            tok = child.stop_token();
            goro::context_after_func(child, [ran] { ran.send(7); });  // stop dropped
        }  // child, grandchild and both cancel functions are gone, never called
        EXPECT_TRUE(done.try_recv().empty());
        EXPECT_FALSE(tok.stop_requested());
        cancel_parent();
        EXPECT_TRUE(closes_within(done));
        EXPECT_TRUE(tok.stop_requested());
        int got = 0;
        goro::select(goro::recv_case(ran, [&](std::optional<int> v) { got = v.value_or(0); }),
                     goro::recv_case(goro::after(5s)));
        EXPECT_EQ(got, 7) << "the after-func of the dropped child did not run";
    });
}

TEST(Context, DroppedChildWithDeadlineStillClosesItsDone) {
    goro::run(procs(2), [] {
        auto t0 = goro::clock::now();
        goro::recv_chan<goro::unit> done =
            goro::with_timeout(goro::background(), 10ms).first.done();
        EXPECT_TRUE(closes_within(done));  // by the deadline, although the context is gone
        EXPECT_GE(goro::clock::now() - t0, 10ms);
    });
}

TEST(Context, HeirsPassUpThroughDroppedAncestors) {
    goro::run(procs(1), [] {
        auto [root, cancel] = goro::with_cancel(goro::background());
        std::vector<goro::recv_chan<goro::unit>> watched;
        {
            auto [a, ca] = goro::with_cancel(root);
            {
                auto [b, cb] = goro::with_cancel(a);
                for (int i = 0; i < 50; ++i) watched.push_back(goro::with_cancel(b).first.done());
                watched.push_back(b.done());
            }  // b and its children dropped: heirs go to a
            for (int i = 0; i < 1000; ++i) (void)goro::with_cancel(a).first.done();  // unwatched
            watched.push_back(a.done());
        }  // a dropped: its heirs and its own go to root
        for (auto& d : watched) EXPECT_TRUE(d.try_recv().empty());
        cancel();
        for (auto& d : watched) EXPECT_TRUE(d.try_recv().closed());
    });
}

TEST(Context, CauseConvertsAndForwards) {
    auto [a, cancel_a] = goro::with_cancel_cause(goro::background());
    cancel_a(std::make_error_code(std::errc::connection_reset));
    std::error_code ec = goro::cause(a);
    EXPECT_EQ(ec, std::errc::connection_reset);
    auto [b, cancel_b] = goro::with_cancel_cause(goro::background());
    cancel_b(goro::cause(a));  // forward another context's cause
    EXPECT_EQ(goro::cause(b), std::make_error_code(std::errc::connection_reset));
    EXPECT_EQ(b.err(), goro::errc::canceled);
    auto [c, cancel_c] = goro::with_cancel_cause(goro::background());
    cancel_c(std::exception_ptr{});  // a null cause is plain cancellation
    EXPECT_EQ(goro::cause(c), goro::errc::canceled);
}

TEST(Context, DeadlineFromAPlainThreadWithoutRun) {
    std::thread t([] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 5ms);
        ctx.done().recv();  // blocks this thread; the runtime starts lazily
        EXPECT_EQ(ctx.err(), goro::errc::deadline_exceeded);
    });
    t.join();
}

TEST(ContextStress, AfterFuncStopRacingCancel) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            const int n = static_cast<int>(scaled(2000));
            std::atomic<int> ran{0}, stopped{0};
            goro::wait_group wg;
            for (int i = 0; i < n; ++i) {
                auto [ctx, cancel] = goro::with_cancel(goro::background());
                auto stop = goro::context_after_func(ctx, [&ran, &wg] {
                    ran.fetch_add(1);
                    wg.done();
                });
                wg.add(1);
                wg.go([cancel = cancel] { cancel(); });
                wg.go([stop, &stopped, &wg] {
                    if (stop()) {
                        stopped.fetch_add(1);
                        wg.done();  // fn will never run: account for it here
                    }
                });
            }
            wg.wait();
            EXPECT_EQ(ran.load() + stopped.load(), n) << "fn both ran and was stopped, or neither";
        });
}

TEST(ContextStress, ChildrenCreatedWhileTheParentIsCancelled) {
    goro::run(procs(2), [] {
        for (int r = 0; r < static_cast<int>(scaled(200)); ++r) {
            auto [parent, cancel] = goro::with_cancel(goro::background());
            std::vector<goro::context> kids;
            goro::mutex m;
            goro::wait_group wg;
            for (int g = 0; g < 3; ++g)
                wg.go([&, parent = parent] {
                    for (int i = 0; i < 20; ++i) {
                        auto c = goro::with_timeout(parent, 1h).first;
                        std::lock_guard lk(m);
                        kids.push_back(c);
                    }
                });
            wg.go([cancel = cancel] { cancel(); });
            wg.wait();
            for (auto& k : kids) ASSERT_EQ(k.err(), goro::errc::canceled);
        }
    });
}

// Go 1.21's WithDeadlineCause / WithTimeoutCause: the cause when the deadline
// passes; err() stays deadline_exceeded; cancel() does not set it.
TEST(Context, DeadlineCauseIsTheCauseWhenTheDeadlinePasses) {
    goro::run(procs(2), [] {
        const auto slow = std::make_error_code(std::errc::timed_out);
        auto [ctx, cancel] = goro::with_timeout_cause(goro::background(), 5ms, slow);
        EXPECT_FALSE(goro::cause(ctx));
        ASSERT_TRUE(closes_within(ctx.done()));
        EXPECT_EQ(ctx.err(), goro::errc::deadline_exceeded);
        EXPECT_EQ(goro::cause(ctx), slow);
        auto [child, cc] = goro::with_cancel(ctx);  // born cancelled, with the cause
        EXPECT_EQ(goro::cause(child), slow);
        cancel();  // too late: the first reason stays
        EXPECT_EQ(goro::cause(ctx), slow);

        // An exception cause, rethrowable; its code is deadline_exceeded.
        struct backend_slow : std::runtime_error {
            backend_slow() : std::runtime_error("backend slow") {}
        };
        auto [ex_ctx, c2] = goro::with_timeout_cause(goro::background(), 1ms,
                                                     std::make_exception_ptr(backend_slow{}));
        ASSERT_TRUE(closes_within(ex_ctx.done()));
        EXPECT_EQ(goro::cause(ex_ctx), goro::errc::deadline_exceeded);
        EXPECT_THROW(goro::cause(ex_ctx).rethrow(), backend_slow);
    });
}

TEST(Context, DeadlineCauseNotSetByCancelOrParent) {
    auto [a, cancel_a] = goro::with_timeout_cause(goro::background(), 1h, goro::errc::closed);
    cancel_a();
    EXPECT_EQ(a.err(), goro::errc::canceled);
    EXPECT_EQ(goro::cause(a), goro::errc::canceled);

    auto [parent, cancel_parent] = goro::with_cancel_cause(goro::background());
    auto [b, cancel_b] = goro::with_timeout_cause(parent, 1h, goro::errc::closed);
    cancel_parent(std::make_error_code(std::errc::connection_aborted));
    EXPECT_EQ(goro::cause(b), std::make_error_code(std::errc::connection_aborted));

    // The parent's deadline is sooner: a plain with_cancel child, whose
    // cause when that deadline passes is the parent's.
    auto [p2, c2] = goro::with_timeout_cause(goro::background(), 2ms, goro::errc::unexpected_eof);
    auto [c, cancel_c] = goro::with_timeout_cause(p2, 1h, goro::errc::closed);
    EXPECT_EQ(c.deadline(), p2.deadline());
    ASSERT_TRUE(closes_within(c.done()));
    EXPECT_EQ(goro::cause(c), goro::errc::unexpected_eof);
}

TEST(Context, DeadlineCauseInThePastAndEmptyCauses) {
    auto past = goro::clock::now() - 1s;
    auto [a, ca] = goro::with_deadline_cause(goro::background(), past, goro::errc::closed);
    EXPECT_EQ(a.err(), goro::errc::deadline_exceeded);
    EXPECT_EQ(goro::cause(a), goro::errc::closed);
    auto [b, cb] = goro::with_deadline_cause(goro::background(), past, std::exception_ptr{});
    EXPECT_EQ(goro::cause(b), goro::errc::deadline_exceeded);
    auto [c, cc] = goro::with_deadline_cause(goro::background(), past, std::error_code{});
    EXPECT_EQ(goro::cause(c), goro::errc::deadline_exceeded);
    // Another context's cause, forwarded.
    auto [d, cd] = goro::with_deadline_cause(goro::background(), past, goro::cause(a));
    EXPECT_EQ(goro::cause(d), goro::errc::closed);
    auto [e, ce] = goro::with_deadline_cause(goro::background(), past, goro::cancel_cause{});
    EXPECT_EQ(goro::cause(e), goro::errc::deadline_exceeded);
}

// Many deadline-cause contexts racing their cancel functions: each ends with
// exactly one of the two causes, consistent with its err().
TEST(ContextStress, DeadlineCauseRacingCancel) {
    goro::run(procs(8), [] {
        const int n = static_cast<int>(scaled(2000, 10));
        std::atomic<int> bad{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                auto [ctx, cancel] = goro::with_timeout_cause(
                    goro::background(), std::chrono::microseconds(i % 50), goro::errc::closed);
                if (i % 2) goro::yield();
                cancel();
                auto why = goro::cause(ctx);
                bool ok = ctx.err() == goro::errc::deadline_exceeded
                              ? why == goro::errc::closed
                              : ctx.err() == goro::errc::canceled && why == goro::errc::canceled;
                if (!ok) bad.fetch_add(1);
            });
        wg.wait();
        EXPECT_EQ(bad.load(), 0);
    });
}
