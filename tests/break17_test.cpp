// tests/break17_test.cpp — hostile tests of the public API outside the
// scheduler and select: sync primitives (waiters racing cancellation,
// objects freed right after the other party's last call, misuse), context
// (deep chains, cancel racing child creation and lookups), errgroup, timers
// and tickers, sleep with extreme durations, blocking offload, and shutdown
// with goroutines parked in each of them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <functional>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

goro::context_key<int> b17_key;

bool is_done(const goro::context& ctx) {
    return ctx.done().try_recv().closed();
}

}  // namespace

// ---------------------------------------------------------------- context

// `ctx = with_value(ctx, ...)` in a long loop (a request handler wrapping
// its context once per item) builds a long chain. Go handles any depth (the
// collector frees it iteratively); dropping the last handle must not
// recurse once per node on a goroutine's stack.
TEST(Break17Context, DeepValueChainIsDroppedOnAGoroutine) {
    long depth = 0;
    goro::run(procs(2), [&] {
        auto done = goro::make_chan<long>(1);
        goro::go([done]() mutable {
            goro::context ctx = goro::background();
            constexpr long n = 200'000;
            for (long i = 0; i < n; ++i) ctx = goro::with_value(ctx, b17_key, static_cast<int>(i));
            long d = *ctx.value(b17_key);
            ctx = goro::context();  // the whole chain goes here
            done.send(d + 1);
        });
        depth = *done.recv();
    });
    EXPECT_EQ(depth, 200'000);
}

// The same with cancellable nodes: cancelled from the root (work list, not
// recursion), then dropped.
TEST(Break17Context, DeepCancelChainIsCancelledAndDroppedOnAGoroutine) {
    bool all_done = false;
    goro::run(procs(2), [&] {
        auto done = goro::make_chan<bool>(1);
        goro::go([done]() mutable {
            auto [root, cancel] = goro::with_cancel(goro::background());
            goro::context ctx = root;
            constexpr long n = 100'000;
            for (long i = 0; i < n; ++i) ctx = goro::with_cancel(ctx).first;
            auto leaf_done = ctx.done();
            cancel();
            bool ok = leaf_done.try_recv().closed() && ctx.err() == goro::errc::canceled;
            ctx = goro::context();
            root = goro::context();
            done.send(ok);
        });
        all_done = *done.recv();
    });
    EXPECT_TRUE(all_done);
}

// A deep chain whose every done() channel is still watched (a copy held)
// when the contexts are dropped uncancelled: each dying node leaves its
// watched parts to the node above (an heir inheriting the heirs below), so
// the root ends up holding a chain of heirs as long as the context chain.
// Dropping the root uncancelled, and then the channels, must not recurse
// once per heir either; cancelling instead must close every channel.
TEST(Break17Context, DeepChainOfWatchedDoneChannelsDroppedUncancelled) {
    bool ok = false;
    goro::run(procs(2), [&] {
        auto res = goro::make_chan<bool>(1);
        goro::go([res]() mutable {
            constexpr int n = 100'000;
            std::vector<goro::recv_chan<goro::unit>> watched;
            watched.reserve(n);
            {
                auto [root, cancel] = goro::with_cancel(goro::background());
                goro::context ctx = root;
                for (int i = 0; i < n; ++i) {
                    ctx = goro::with_cancel(ctx).first;
                    watched.push_back(ctx.done());
                }
            }  // everything dropped uncancelled, leaf first
            bool none_closed = true;
            for (int i = 0; i < n; i += 997) none_closed &= watched[i].try_recv().empty();
            watched.clear();
            // And cancelled instead: every watched channel closes.
            auto [root, cancel] = goro::with_cancel(goro::background());
            {
                goro::context ctx = root;
                for (int i = 0; i < n; ++i) {
                    ctx = goro::with_cancel(ctx).first;
                    watched.push_back(ctx.done());
                }
            }
            cancel();
            bool all_closed = true;
            for (auto& d : watched) all_closed &= d.try_recv().closed();
            res.send(none_closed && all_closed);
        });
        ok = *res.recv();
    });
    EXPECT_TRUE(ok);
}

// Children created while the parent is being cancelled: each one is either
// registered before the cancel (and cancelled by it) or born cancelled.
// None may stay live, whatever the interleaving.
TEST(Break17Context, ChildCreationRacingCancelLeavesNoLiveChild) {
    const int rounds = static_cast<int>(scaled(200, 10));
    goro::run(procs(2), [&] {
        for (int r = 0; r < rounds; ++r) {
            auto [parent, cancel] = goro::with_cancel(goro::background());
            auto vparent = goro::with_value(parent, b17_key, r);
            constexpr int makers = 4;
            constexpr int per = 100;
            std::vector<std::vector<goro::context>> made(makers);
            goro::wait_group wg;
            for (int m = 0; m < makers; ++m)
                wg.go([&, m] {
                    for (int i = 0; i < per; ++i) {
                        switch (i % 4) {
                            case 0:
                                made[m].push_back(goro::with_cancel(vparent).first);
                                break;
                            case 1:
                                made[m].push_back(goro::with_timeout(vparent, 1h).first);
                                break;
                            case 2:
                                made[m].push_back(
                                    goro::with_value(goro::with_cancel(vparent).first, b17_key, i));
                                break;
                            default:
                                made[m].push_back(goro::with_cancel_cause(vparent).first);
                                break;
                        }
                        if (i % 16 == 0) goro::yield();
                    }
                });
            wg.go([cancel = cancel] {
                goro::yield();
                cancel();
            });
            wg.wait();
            for (auto& v : made)
                for (auto& c : v) {
                    ASSERT_EQ(c.err(), goro::errc::canceled);
                    ASSERT_TRUE(is_done(c));
                    ASSERT_NE(c.value(b17_key), nullptr);
                }
        }
    });
}

// Thousands of children of one parent, each watched by a goroutine parked on
// its done(); then the parent is cancelled and the children's handles are
// all dropped while the goroutines still wait: every one must wake.
TEST(Break17Context, ThousandsOfWatchersWakeAfterTheirContextsAreDropped) {
    const int n = static_cast<int>(scaled(3000, 5));
    std::atomic<int> woke{0};
    goro::run(procs(2), [&] {
        auto [parent, cancel] = goro::with_cancel(goro::background());
        goro::wait_group wg;
        {
            std::vector<goro::context> kids;
            for (int i = 0; i < n; ++i) kids.push_back(goro::with_cancel(parent).first);
            for (auto& k : kids)
                wg.go([d = k.done(), &woke] {
                    d.recv();
                    woke.fetch_add(1);
                });
        }  // every child context is dropped uncancelled; only done() copies remain
        goro::yield();
        cancel();
        wg.wait();
    });
    EXPECT_EQ(woke.load(), n);
}

// A deadline in the past: born cancelled with deadline_exceeded, and the
// cause says so; a child of it is too.
TEST(Break17Context, DeadlineInThePastAndMinimumTimePoint) {
    goro::run(procs(2), [&] {
        auto [a, ca] = goro::with_deadline(goro::background(), goro::clock::time_point::min());
        EXPECT_EQ(a.err(), goro::errc::deadline_exceeded);
        EXPECT_TRUE(is_done(a));
        EXPECT_EQ(goro::cause(a), goro::errc::deadline_exceeded);
        auto [b, cb] = goro::with_timeout(goro::background(), -1h);
        EXPECT_EQ(b.err(), goro::errc::deadline_exceeded);
        auto [c, cc] = goro::with_timeout(goro::background(), std::chrono::hours::min());
        EXPECT_EQ(c.err(), goro::errc::deadline_exceeded);
        auto [d, cd] = goro::with_cancel(a);
        EXPECT_EQ(d.err(), goro::errc::deadline_exceeded);
        auto [e, ce] = goro::with_timeout(goro::background(), std::chrono::hours::max());
        EXPECT_FALSE(e.err());
        ce();
        EXPECT_EQ(e.err(), goro::errc::canceled);
    });
}

// -------------------------------------------------------------------- sleep

TEST(Break17Sleep, NegativeZeroAndMinDurationsReturnAtOnce) {
    goro::run(procs(2), [&] {
        goro::sleep_for(-1h);
        goro::sleep_for(0s);
        goro::sleep_for(std::chrono::nanoseconds::min());
        goro::sleep_for(std::chrono::hours::min());
        goro::sleep_for(std::chrono::duration<double>(-1e300));
        goro::sleep_until(goro::clock::time_point::min());
        goro::sleep_until(goro::clock::now() - 1h);
        SUCCEED();
    });
}

// A goroutine sleeping for ever (hours::max(), a huge double) is unwound at
// shutdown; run() returns.
TEST(Break17Sleep, HugeSleepsAreUnwoundAtShutdown) {
    std::atomic<int> unwound{0};
    goro::run(procs(2), [&] {
        struct count_on_exit {
            std::atomic<int>& c;
            ~count_on_exit() { c.fetch_add(1); }
        };
        goro::go([&] {
            count_on_exit g{unwound};
            goro::sleep_for(std::chrono::hours::max());
        });
        goro::go([&] {
            count_on_exit g{unwound};
            goro::sleep_for(std::chrono::duration<double>(1e300));
        });
        goro::go([&] {
            count_on_exit g{unwound};
            goro::sleep_until(goro::clock::time_point::max());
        });
        goro::sleep_for(10ms);
    });
    EXPECT_EQ(unwound.load(), 3);
}

// --------------------------------------------------------------------- sync

// once::call from inside its own fn, on the same goroutine: Go deadlocks;
// goro's rule is misuse_error naming the call, never a hang (as once_func,
// once_value and singleflight already do for the same mistake).
TEST(Break17Once, RecursiveCallIsMisuseNotAHang) {
    int outcome = 0;  // 1: misuse_error naming goro::once, 2: returned, 3: hung
    goro::run(procs(2), [&] {
        auto res = goro::make_chan<int>(1);
        auto o = std::make_shared<goro::once>();
        goro::go([res, o]() mutable {
            try {
                o->call([&] { o->call([] {}); });
                res.send(2);
            } catch (const goro::misuse_error& e) {
                res.send(std::string(e.what()).find("goro::once") != std::string::npos ? 1 : 4);
            }
        });
        goro::select(goro::recv_case(res, [&](std::optional<int> v) { outcome = *v; }),
                     goro::recv_case(goro::after(5s), [&](auto) { outcome = 3; }));
    });
    EXPECT_EQ(outcome, 1) << "1: misuse_error naming goro::once, 2: returned, 3: hung";
}

// The same on a plain thread (it would block the thread for ever).
TEST(Break17Once, RecursiveCallOnAPlainThreadIsMisuse) {
    goro::once o;
    std::atomic<int> outcome{0};
    std::thread t([&] {
        try {
            o.call([&] { o.call([] {}); });
            outcome = 2;
        } catch (const goro::misuse_error&) {
            outcome = 1;
        }
    });
    for (int i = 0; i < 500 && outcome.load() == 0; ++i) std::this_thread::sleep_for(10ms);
    if (outcome.load() == 0) {
        t.detach();  // hung for ever: nothing can wake it
        FAIL() << "goro::once::call from inside its own fn hung the thread";
    }
    t.join();
    EXPECT_EQ(outcome.load(), 1);
}

// acquire(ctx) racing cancellation and release, with requests of several
// sizes: whatever wins each race, no permit is lost or duplicated. At the
// end the whole semaphore can be taken at once, and blocking acquires of
// the full size queued behind the cancelled ones all got through.
TEST(Break17Semaphore, ContextAcquireRacingCancelAndReleaseConservesPermits) {
    const int rounds = static_cast<int>(scaled(300, 10));
    goro::run(procs(2), [&] {
        constexpr std::int64_t size = 4;
        goro::semaphore s(size);
        std::atomic<std::int64_t> held{0};
        std::atomic<bool> over{false};
        for (int r = 0; r < rounds; ++r) {
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            goro::wait_group wg;
            for (int g = 0; g < 6; ++g)
                wg.go([&, g, ctx = ctx] {
                    const std::int64_t n = 1 + (g + r) % size;
                    if (s.acquire(ctx, n)) return;
                    if (held.fetch_add(n) + n > size) over = true;
                    goro::yield();
                    held.fetch_sub(n);
                    s.release(n);
                });
            wg.go([&] {
                // A full-size blocking acquire behind them: must get through.
                s.acquire(size);
                if (held.fetch_add(size) != 0) over = true;
                held.fetch_sub(size);
                s.release(size);
            });
            wg.go([&, cancel = cancel] {
                if (r % 3) goro::yield();
                cancel();
            });
            wg.wait();
            ASSERT_FALSE(over.load()) << "more permits held than the size, round " << r;
            ASSERT_TRUE(s.try_acquire(size)) << "permits lost, round " << r;
            s.release(size);
        }
    });
}

// A semaphore freed by the goroutine that got the permits through
// acquire(ctx) as soon as it has them; the releaser must not touch it after
// the grant. ASan sees any use after free.
TEST(Break17Semaphore, FreedByTheContextAcquirerRightAfterTheGrant) {
    const int rounds = static_cast<int>(scaled(3000, 10));
    goro::run(procs(2), [&] {
        for (int r = 0; r < rounds; ++r) {
            auto* s = new goro::semaphore(2);
            s->acquire(2);
            auto got = goro::make_chan<int>(1);
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            goro::go([s, got, ctx = ctx]() mutable {
                std::error_code e = s->acquire(ctx, 2);
                if (!e) delete s;  // every permit is ours: nobody else uses it
                got.send(e ? 1 : 0);
            });
            if (r % 2) goro::yield();
            if (r % 5 == 4) cancel();
            s->release(2);
            int v = *got.recv();
            if (v) delete s;  // cancelled: we still own it
            cancel();
        }
    });
}

// Misuse of the sync primitives: each throws misuse_error (a logic_error)
// naming the call, and the object keeps working afterwards.
TEST(Break17Misuse, SyncPrimitivesNameTheCallAndStayUsable) {
    auto expect = [](auto&& f, const std::string& names) {
        try {
            f();
            ADD_FAILURE() << "no exception; expected one naming " << names;
        } catch (const std::logic_error& e) {
            EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
        }
    };
    goro::run(procs(2), [&] {
        goro::mutex m;
        expect([&] { m.unlock(); }, "goro::mutex::unlock");
        m.lock();
        m.unlock();
        goro::rw_mutex rw;
        expect([&] { rw.unlock(); }, "goro::rw_mutex::unlock");
        expect([&] { rw.unlock_shared(); }, "goro::rw_mutex::unlock_shared");
        rw.lock_shared();
        expect([&] { rw.unlock(); }, "goro::rw_mutex::unlock");
        rw.unlock_shared();
        rw.lock();
        expect([&] { rw.unlock_shared(); }, "goro::rw_mutex::unlock_shared");
        rw.unlock();
        EXPECT_TRUE(rw.try_lock());
        rw.unlock();
        goro::semaphore s(2);
        expect([&] { s.release(); }, "goro::semaphore::release");
        expect([&] { s.acquire(3); }, "goro::semaphore::acquire");
        expect([&] { s.acquire(-1); }, "goro::semaphore::acquire");
        expect([&] { s.try_acquire(-1); }, "goro::semaphore::try_acquire");
        expect([&] { s.release(-1); }, "goro::semaphore::release");
        expect([] { goro::semaphore bad(-1); }, "goro::semaphore");
        EXPECT_TRUE(s.try_acquire(2));
        s.release(2);
        goro::wait_group wg;
        expect([&] { wg.done(); }, "goro::wait_group::done");
        expect([&] { wg.add(-5); }, "goro::wait_group::add");
        EXPECT_EQ(wg.count(), 0);
        wg.wait();  // still zero: returns
        goro::mutex other;
        goro::cond c(m);
        std::unique_lock lk(other);
        expect([&] { c.wait(lk); }, "goro::cond::wait");
        lk.unlock();
        std::unique_lock lk2(m, std::defer_lock);
        expect([&] { c.wait(lk2); }, "goro::cond::wait");
        expect([] { goro::ticker t(0s); }, "goro::ticker");
        expect([] { goro::ticker t(-1ms); }, "goro::ticker");
        goro::errgroup g;
        g.set_limit(1);
        auto gate = goro::make_chan<goro::unit>();
        g.go([gate] { gate.recv(); });
        expect([&] { g.set_limit(3); }, "goro::errgroup::set_limit");
        gate.close();
        g.wait();
        g.set_limit(3);  // idle again: allowed
    });
}

// Destructors that park while an exception unwinds the goroutine: a lock
// guard's destructor cannot throw, so the park must simply complete when
// the other party lets go — also when the exception is shutdown's own.
TEST(Break17Sync, DestructorsParkDuringShutdownUnwinding) {
    std::atomic<int> finished{0};
    goro::run(procs(2), [&] {
        auto m = std::make_shared<goro::mutex>();
        auto wg = std::make_shared<goro::wait_group>();
        auto never = goro::make_chan<int>();
        auto holding = goro::make_chan<goro::unit>(1);
        wg->add(1);
        // B holds m until it is unwound (its guard releases m then).
        goro::go([m, never, holding, wg, &finished] {
            std::lock_guard g(*m);
            holding.send({});
            struct done_on_exit {
                std::shared_ptr<goro::wait_group> wg;
                ~done_on_exit() { wg->done(); }
            } d{wg};
            never.recv();
            finished.fetch_add(100);
        });
        holding.recv();
        // A parks on `never` too; unwound, its destructor locks m (held by
        // B) and then waits for B's wait_group.
        goro::go([m, never, wg, &finished] {
            struct on_exit {
                std::shared_ptr<goro::mutex> m;
                std::shared_ptr<goro::wait_group> wg;
                std::atomic<int>& f;
                ~on_exit() {
                    std::lock_guard g(*m);
                    wg->wait();
                    f.fetch_add(1);
                }
            } e{m, wg, finished};
            never.recv();
        });
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(finished.load(), 1);
}

// Parks inside a catch block (no exception in flight any more, but the
// handler's exception object is alive): mutex, cond, semaphore, channel.
TEST(Break17Sync, ParksInsideCatchBlocks) {
    const int n = static_cast<int>(scaled(2000, 10));
    std::atomic<int> caught{0};
    goro::run(procs(2), [&] {
        goro::mutex m;
        goro::cond cv(m);
        goro::semaphore s(1);
        int turn = 0;
        auto ch = goro::make_chan<int>();
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                try {
                    throw std::runtime_error("x" + std::to_string(i));
                } catch (const std::runtime_error& e) {
                    {
                        std::unique_lock lk(m);
                        cv.wait(lk, [&] { return turn >= 0; });
                        ++turn;
                    }
                    s.acquire();
                    goro::yield();
                    s.release();
                    ch.send(i);
                    if (std::string(e.what()) == "x" + std::to_string(i)) caught.fetch_add(1);
                }
            });
        long sum = 0;
        for (int i = 0; i < n; ++i) sum += *ch.recv();
        wg.wait();
        EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
        EXPECT_EQ(turn, n);
    });
    EXPECT_EQ(caught.load(), n);
}

// ------------------------------------------------------------------ errgroup

// with_context: a task that throws cancels ctx with the exception as its
// cause; wait rethrows that exception (its type), a second wait too; go()
// after wait runs again and the group can be waited on again.
TEST(Break17Errgroup, ThrowCancelsWithCauseWaitTwiceAndGoAfterWait) {
    struct my_error : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    goro::run(procs(2), [&] {
        auto [g, ctx] = goro::errgroup::with_context(goro::background());
        std::atomic<int> saw_cancel{0};
        for (int i = 0; i < 50; ++i)
            g.go([&, ctx = ctx] {
                ctx.done().recv();
                saw_cancel.fetch_add(1);
            });
        g.go([] { throw my_error("boom"); });
        for (int k = 0; k < 2; ++k) {
            try {
                g.wait();
                ADD_FAILURE() << "wait did not rethrow";
            } catch (const my_error& e) {
                EXPECT_STREQ(e.what(), "boom");
            }
        }
        EXPECT_EQ(saw_cancel.load(), 50);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
        auto c = goro::cause(ctx);
        ASSERT_TRUE(c.exception());
        try {
            c.rethrow();
        } catch (const my_error& e) {
            EXPECT_STREQ(e.what(), "boom");
        } catch (...) {
            ADD_FAILURE() << "cause is not the task's exception";
        }
        std::atomic<int> later{0};
        g.go([&] { later.fetch_add(1); });
        EXPECT_THROW(g.wait(), my_error);  // the first failure stays
        EXPECT_EQ(later.load(), 1);
    });
}

// set_limit: never more than the limit at once, try_go refuses when full,
// and a go() blocked on the limit proceeds as tasks finish.
TEST(Break17Errgroup, LimitIsNeverExceeded) {
    goro::run(procs(2), [&] {
        goro::errgroup g;
        g.set_limit(3);
        std::atomic<int> running{0}, peak{0}, ran{0};
        const int n = static_cast<int>(scaled(2000, 10));
        for (int i = 0; i < n; ++i) {
            auto task = [&] {
                int now = running.fetch_add(1) + 1;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                goro::yield();
                running.fetch_sub(1);
                ran.fetch_add(1);
            };
            if (i % 2 || !g.try_go(task)) g.go(task);
        }
        g.wait();
        EXPECT_LE(peak.load(), 3);
        EXPECT_EQ(ran.load(), n);
        // Full: try_go is false while three hold the limit.
        auto gate = goro::make_chan<goro::unit>();
        for (int i = 0; i < 3; ++i) g.go([gate] { gate.recv(); });
        EXPECT_FALSE(g.try_go([] {}));
        gate.close();
        g.wait();
        EXPECT_TRUE(g.try_go([] {}));
        g.wait();
    });
}

// A limit of zero: try_go is always false (Go: "a limit of zero will
// prevent any new goroutines from being added").
TEST(Break17Errgroup, LimitZeroRefusesTryGo) {
    goro::run(procs(2), [&] {
        goro::errgroup g;
        g.set_limit(0);
        EXPECT_FALSE(g.try_go([] {}));
        // A go() blocks; another goroutine's try_go must not let it through
        // by pairing with it (the limit channel is unbuffered).
        std::atomic<bool> started{false};
        goro::go([&] { g.go([&] { started = true; }); });
        goro::sleep_for(5ms);
        EXPECT_FALSE(g.try_go([] {}));
        goro::sleep_for(5ms);
        EXPECT_FALSE(started.load());
    });
}

// --------------------------------------------------------------------- time

// An after_func that resets its own timer from inside the callback, many
// times: it runs exactly once per reset, then stops for good.
TEST(Break17Time, AfterFuncResetsItselfFromItsCallback) {
    const int n = static_cast<int>(scaled(2000, 10));
    goro::run(procs(2), [&] {
        std::atomic<int> runs{0};
        auto all = goro::make_chan<goro::unit>(1);
        auto holder = std::make_shared<goro::timer>(goro::after_func(1h, [] {}));
        goro::mutex m;
        *holder = goro::after_func(1h, [&, holder_w = std::weak_ptr<goro::timer>(holder)] {
            int r = runs.fetch_add(1) + 1;
            if (r < n) {
                auto h = holder_w.lock();
                std::lock_guard lk(m);
                if (h) {
                    EXPECT_FALSE(h->reset(0ns));  // fn was started: "scheduled again"
                }
            } else if (r == n) {
                all.send({});
            }
        });
        {
            std::lock_guard lk(m);
            EXPECT_TRUE(holder->reset(0ns));
        }
        all.recv();
        goro::sleep_for(10ms);
        EXPECT_EQ(runs.load(), n);
        std::lock_guard lk(m);
        EXPECT_FALSE(holder->stop());
    });
}

// stop() racing the fire of many after_func timers: f runs exactly for the
// ones whose stop() was false.
TEST(Break17Time, AfterFuncStopRacingFireRunsExactlyTheUnstopped) {
    const int n = static_cast<int>(scaled(5000, 10));
    goro::run(procs(2), [&] {
        std::atomic<int> ran{0};
        int not_stopped = 0;
        goro::wait_group wg;
        std::vector<goro::timer> ts;
        for (int i = 0; i < n; ++i) {
            ts.push_back(
                goro::after_func(std::chrono::microseconds(i % 50), [&] { ran.fetch_add(1); }));
            if (i % 7 == 0) goro::yield();
            if (!ts.back().stop()) ++not_stopped;
        }
        for (int k = 0; k < 500 && ran.load() < not_stopped; ++k) goro::sleep_for(10ms);
        goro::sleep_for(20ms);
        EXPECT_EQ(ran.load(), not_stopped);
    });
}

// Tickers with the smallest periods: ticks arrive in order, a slow reader
// loses ticks rather than queueing them, and after stop() no tick is
// received.
TEST(Break17Time, TinyPeriodTickersStopCleanly) {
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        for (int g = 0; g < 8; ++g)
            wg.go([g] {
                goro::ticker k(std::chrono::nanoseconds(1 + g));
                goro::clock::time_point last{};
                for (int i = 0; i < static_cast<int>(scaled(2000, 10)); ++i) {
                    auto t = *k.c().recv();
                    EXPECT_GE(t, last);
                    last = t;
                    if (i % 100 == 0) k.reset(std::chrono::nanoseconds(1));
                }
                k.stop();
                EXPECT_TRUE(k.c().try_recv().empty());
                goro::sleep_for(1ms);
                EXPECT_TRUE(k.c().try_recv().empty());
            });
        wg.wait();
    });
}

// An after_func whose callback blocks for ever, and timers and tickers
// still pending when run() returns, kept past it: run() returns, and the
// handles stay usable (stop() false: the runtime that ran them is gone).
TEST(Break17Time, TimersOutliveRunAndBlockedCallbacksAreUnwound) {
    std::optional<goro::timer> kept;
    std::unique_ptr<goro::ticker> kept_ticker;
    std::atomic<int> unwound{0};
    goro::run(procs(2), [&] {
        struct count_on_exit {
            std::atomic<int>& c;
            ~count_on_exit() { c.fetch_add(1); }
        };
        auto never = goro::make_chan<int>();
        auto started = goro::make_chan<goro::unit>(1);
        goro::after_func(0ns, [&, never, started] {
            count_on_exit g{unwound};
            started.send({});
            never.recv();
        });
        started.recv();
        kept.emplace(1h);
        kept_ticker = std::make_unique<goro::ticker>(1h);
    });
    EXPECT_EQ(unwound.load(), 1);
    EXPECT_FALSE(kept->stop());
    EXPECT_TRUE(kept->c().try_recv().empty());
    kept_ticker->stop();
    kept_ticker->reset(1ms);  // starts the process-wide runtime lazily
    auto t = kept_ticker->c().recv();
    EXPECT_TRUE(t.has_value());
    kept_ticker->stop();
    (void)kept->reset(1ms);
    EXPECT_TRUE(kept->c().recv().has_value());
    kept.reset();
    kept_ticker.reset();
}

// ----------------------------------------------------------------- blocking

// blocking(ctx, fn) cancelled while fn runs: the caller gets canceled at
// once, fn finishes on the pool with its own copies, and run() waits for
// it before returning.
TEST(Break17Blocking, CancelledWhileRunningThenShutdownWaitsForFn) {
    std::atomic<int> fn_done{0};
    std::atomic<int> errors{0};
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        for (int i = 0; i < 8; ++i) {
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            auto in = goro::make_chan<goro::unit>(1);
            wg.go([&, ctx = ctx, in] {
                try {
                    goro::blocking(ctx, [&fn_done, in, v = std::string(100, 'x')]() mutable {
                        in.send({});
                        std::this_thread::sleep_for(20ms);
                        fn_done.fetch_add(v.size() == 100 ? 1 : 0);
                        return v;
                    });
                } catch (const std::system_error& e) {
                    if (e.code() == goro::errc::canceled) errors.fetch_add(1);
                }
            });
            in.recv();
            cancel();
        }
        wg.wait();
        // fn still running on the pool for some: run() must wait for them.
    });
    EXPECT_EQ(errors.load(), 8);
    EXPECT_EQ(fn_done.load(), 8);
}

// ------------------------------------------------------------------ shutdown

// run() returns with goroutines parked in every kind of wait of this file's
// areas, and each one's destructors ran.
TEST(Break17Shutdown, GoroutinesParkedEverywhereAreUnwound) {
    std::atomic<int> unwound{0};
    constexpr int kinds = 12;
    goro::run(procs(2), [&] {
        struct count_on_exit {
            std::atomic<int>& c;
            ~count_on_exit() { c.fetch_add(1); }
        };
        auto m = std::make_shared<goro::mutex>();
        auto rw = std::make_shared<goro::rw_mutex>();
        auto cm = std::make_shared<goro::mutex>();
        auto cv = std::make_shared<goro::cond>(*cm);
        auto sem = std::make_shared<goro::semaphore>(1);
        auto wg = std::make_shared<goro::wait_group>();
        auto o = std::make_shared<goro::once>();
        auto sf = std::make_shared<goro::singleflight::group<int, int>>();
        auto never = goro::make_chan<int>();
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        m->lock();
        rw->lock();
        sem->acquire();
        wg->add(1);
        auto parked = goro::make_chan<goro::unit>(kinds);
        auto go = [&](auto f) {
            goro::go([f, &unwound, parked]() mutable {
                count_on_exit g{unwound};
                f(parked);
            });
        };
        go([m](auto p) {
            p.send({});
            m->lock();
        });
        go([rw](auto p) {
            p.send({});
            rw->lock_shared();
        });
        go([rw](auto p) {
            p.send({});
            rw->lock();
        });
        go([cm, cv](auto p) {
            std::unique_lock lk(*cm);
            p.send({});
            cv->wait(lk);
        });
        go([sem](auto p) {
            p.send({});
            sem->acquire();
        });
        go([sem, ctx = ctx](auto p) {
            p.send({});
            (void)sem->acquire(ctx);
        });
        go([wg](auto p) {
            p.send({});
            wg->wait();
        });
        go([o, never](auto p) {
            o->call([&] {
                p.send({});
                never.recv();
            });
        });
        go([sf, never](auto p) {
            sf->do_call(1, [&] {
                p.send({});
                never.recv();
                return 1;
            });
        });
        go([ctx = ctx](auto p) {
            p.send({});
            ctx.done().recv();
        });
        go([](auto p) {
            goro::timer t(1h);
            p.send({});
            t.c().recv();
        });
        go([ctx = ctx](auto p) {
            p.send({});
            goro::blocking(ctx, [] { return 1; });
            goro::sleep_for(1h);
        });
        for (int i = 0; i < kinds; ++i) parked.recv();
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(unwound.load(), kinds);
}

// ----------------------------------------------------------------------- io

namespace {

// Runs wait(fd) on a goroutine; the outcome, or "hung" after a generous
// guard (the goroutine is then unwound at shutdown).
std::string io_outcome(std::function<std::error_code()> wait) {
    std::string out = "hung";
    goro::run(procs(2), [&] {
        auto res = goro::make_chan<std::string>(1);
        goro::go([res, wait] {
            try {
                std::error_code e = wait();
                res.send(e ? "error: " + e.message() : std::string("ready"));
            } catch (const std::exception& e) {
                res.send(std::string("threw: ") + e.what());
            }
        });
        goro::select(goro::recv_case(res, [&](std::optional<std::string> v) { out = *v; }),
                     goro::recv_case(goro::after(3s), [](auto) {}));
    });
    return out;
}

}  // namespace

// io.hpp: "a regular file is always reported ready".
TEST(Break17Io, RegularFileIsReportedReady) {
    int fd = ::open("/proc/self/exe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(io_outcome([fd] { return goro::wait_readable(fd); }), "ready");
    EXPECT_EQ(io_outcome([fd] { return goro::wait_writable(fd, goro::clock::now() + 1h); }),
              "ready");
    ::close(fd);
}

// A descriptor number that is not open (closed before the wait; the
// contract requires it to stay open while waited on, but a wait that starts
// on a closed one is a plain error in Go, EBADF): the wait must end — ready
// (the I/O call then says EBADF) or an error — never hang.
TEST(Break17Io, WaitOnADescriptorClosedBeforehandEnds) {
    // Numbers far above what the runtime opens for itself (its poller's
    // epoll and eventfd reuse the lowest free numbers).
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    const int r_fd = ::fcntl(p[0], F_DUPFD_CLOEXEC, 900);
    const int w_fd = ::fcntl(p[1], F_DUPFD_CLOEXEC, 910);
    ASSERT_GE(r_fd, 900);
    ASSERT_GE(w_fd, 910);
    for (int fd : {p[0], p[1], r_fd, w_fd}) ::close(fd);
    std::string r = io_outcome([r_fd] { return goro::wait_readable(r_fd); });
    EXPECT_NE(r, "hung");
    std::string w = io_outcome([w_fd] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
        return goro::wait_writable(w_fd, ctx);
    });
    EXPECT_NE(w, "hung");
}

// Several goroutines wait on one pipe with different deadlines: the ones
// whose deadline passes leave, the others stay registered and are woken by
// the write that comes after.
TEST(Break17Io, WaitersWithMixedDeadlinesOnOneDescriptor) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    std::atomic<int> timed_out{0}, ready{0};
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        for (int i = 0; i < 16; ++i)
            wg.go([&, i] {
                auto dl = i % 2 ? goro::clock::now() + 1ms : goro::clock::now() + 1h;
                std::error_code e = goro::wait_readable(p[0], dl);
                if (e == goro::errc::deadline_exceeded)
                    timed_out.fetch_add(1);
                else if (!e)
                    ready.fetch_add(1);
            });
        while (timed_out.load() < 8) goro::sleep_for(1ms);
        ASSERT_EQ(::write(p[1], "x", 1), 1);
        wg.wait();
    });
    EXPECT_EQ(timed_out.load(), 8);
    EXPECT_EQ(ready.load(), 8);
    ::close(p[0]);
    ::close(p[1]);
}

// --------------------------------------------------------------- blocking 2

// blocking(ctx, fn) queued behind a full pool (blocking_threads = 1) and
// cancelled before it starts: it throws canceled and fn never runs.
TEST(Break17Blocking, CancelledWhileQueuedNeverRuns) {
    std::atomic<int> second_ran{0};
    std::atomic<bool> release{false};
    goro::options o = procs(2);
    o.blocking_threads = 1;
    goro::run(o, [&] {
        auto in = goro::make_chan<goro::unit>(1);
        goro::go([&, in] {
            goro::blocking([&, in] {
                in.send({});
                while (!release.load()) std::this_thread::sleep_for(1ms);
            });
        });
        in.recv();
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        auto res = goro::make_chan<int>(1);
        goro::go([&, ctx = ctx, res] {
            try {
                goro::blocking(ctx, [&] { second_ran.fetch_add(1); });
                res.send(0);
            } catch (const std::system_error& e) {
                res.send(e.code() == goro::errc::canceled ? 1 : 2);
            }
        });
        goro::sleep_for(5ms);
        cancel();
        EXPECT_EQ(*res.recv(), 1);
        release = true;
        goro::sleep_for(20ms);
    });
    EXPECT_EQ(second_ran.load(), 0);
}

// ------------------------------------------------------------- context 2

// context_after_func's stop() racing the cancellation: fn runs exactly for
// the registrations whose stop() was false.
TEST(Break17Context, AfterFuncStopRacingCancelRunsExactlyTheUnstopped) {
    const int rounds = static_cast<int>(scaled(200, 10));
    goro::run(procs(2), [&] {
        for (int r = 0; r < rounds; ++r) {
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            constexpr int n = 64;
            std::atomic<int> ran{0};
            std::vector<goro::after_func_stop> stops;
            for (int i = 0; i < n; ++i)
                stops.push_back(goro::context_after_func(ctx, [&] { ran.fetch_add(1); }));
            std::atomic<int> stopped{0};
            goro::wait_group wg;
            wg.go([&, cancel = cancel] { cancel(); });
            wg.go([&] {
                for (auto& s : stops)
                    if (s()) stopped.fetch_add(1);
            });
            wg.wait();
            for (int k = 0; k < 1000 && ran.load() + stopped.load() < n; ++k) goro::sleep_for(1ms);
            goro::sleep_for(1ms);
            ASSERT_EQ(ran.load() + stopped.load(), n) << "round " << r;
            for (auto& s : stops) ASSERT_FALSE(s());
        }
    });
}

// ------------------------------------------------------------ outliving run

// A context with a deadline made inside run() and used after run() has
// returned (kept in an object that outlives it): once the deadline has
// passed, err() must say deadline_exceeded and done() must be closed, as
// deadline() says it has passed (Go: a context past its deadline is done).
TEST(Break17Context, DeadlineOfAContextThatOutlivesRun) {
    goro::context kept;
    goro::cancel_func kept_cancel;
    goro::run(procs(2), [&] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 30ms);
        kept = ctx;
        kept_cancel = cancel;
    });
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(kept.deadline().has_value());
    EXPECT_LT(*kept.deadline(), goro::clock::now());
    EXPECT_EQ(kept.err(), goro::errc::deadline_exceeded);
    bool closed = false;
    std::thread t([&] {
        closed = goro::select(goro::recv_case(kept.done()), goro::recv_case(goro::after(3s))) == 0;
    });
    t.join();
    EXPECT_TRUE(closed);
    kept_cancel();
}

// The same through a child: a value context kept after run() holds its
// deadline parent, whose timer must still cancel both.
TEST(Break17Context, DeadlineOfAParentHeldOnlyByAChildThatOutlivesRun) {
    goro::context kept;
    goro::run(procs(2), [&] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 30ms);
        static const goro::context_key<int> key;
        kept = goro::with_value(ctx, key, 1);
    });
    auto closed = kept.done();
    EXPECT_EQ(goro::select(goro::recv_case(closed), goro::recv_case(goro::after(3s))), 0);
    EXPECT_EQ(kept.err(), goro::errc::deadline_exceeded);
}

// The other side: a deadline context nobody holds any more when run()
// returns keeps nothing alive — its timer ends with the run, and no
// runtime is started for it.
TEST(Break17Context, DeadlineOfAContextDroppedInsideRunEndsWithIt) {
    goro::run(procs(2), [&] {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
        static const goro::context_key<int> key;
        auto child = goro::with_value(ctx, key, 1);
        EXPECT_EQ(goro::stats().timers_pending, 1u);
    });
    EXPECT_FALSE(goro::stats().running);
}

// A kept context whose deadline is far off keeps its timer (and so a
// runtime); cancelling it stops the timer.
TEST(Break17Context, KeptContextsTimerIsStoppedByItsCancel) {
    goro::context kept;
    goro::cancel_func kept_cancel;
    goro::run(procs(2),
              [&] { std::tie(kept, kept_cancel) = goro::with_timeout(goro::background(), 1h); });
    auto after_run = goro::stats();
    EXPECT_TRUE(after_run.running);
    EXPECT_EQ(after_run.timers_pending, 1u);
    EXPECT_EQ(kept.err(), std::error_code{});
    kept_cancel();
    EXPECT_EQ(kept.err(), goro::errc::canceled);
    EXPECT_EQ(goro::stats().timers_pending, 0u);
}

// wait_group: a negative add() while a goroutine waits is refused and
// undone; the waiter still waits, and the balancing done() releases it.
TEST(Break17WaitGroup, RefusedNegativeAddLeavesTheWaiterWaiting) {
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        wg.add(2);
        std::atomic<bool> released{false};
        auto out = goro::make_chan<goro::unit>(1);
        goro::go([&, out] {
            wg.wait();
            released = true;
            out.send({});
        });
        goro::sleep_for(2ms);
        EXPECT_THROW(wg.add(-3), goro::negative_counter_error);
        EXPECT_THROW(wg.add(std::int64_t{1} << 40), goro::misuse_error);
        EXPECT_EQ(wg.count(), 2);
        wg.done();
        goro::sleep_for(2ms);
        EXPECT_FALSE(released.load());
        wg.done();
        out.recv();
        EXPECT_TRUE(released.load());
        EXPECT_THROW(wg.done(), goro::negative_counter_error);
        EXPECT_EQ(wg.count(), 0);
    });
}
