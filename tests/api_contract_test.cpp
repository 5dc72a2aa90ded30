// tests/api_contract_test.cpp — every call written in the public API contract
// (shared/design/api.md), spelled the way the contract spells it, each with an
// assertion on the behaviour the contract states. When this file stops
// compiling, the contract is broken; other test files cover each area in depth.
#include <gtest/gtest.h>

#include <goro/chan.hpp>
#include <goro/context.hpp>
#include <goro/errgroup.hpp>
#include <goro/goro.hpp>
#include <goro/select.hpp>
#include <goro/sync.hpp>
#include <goro/time.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;

namespace {

int returns_seven() {
    return 7;
}

}  // namespace

TEST(ApiContract, Runtime) {
    // int goro::run(F&& fn): fn's int result, else 0.
    EXPECT_EQ(goro::run(returns_seven), 7);
    EXPECT_EQ(goro::run([] {}), 0);
    goro::options opts;
    opts.procs = 2;
    EXPECT_EQ(goro::run(opts, [] { return static_cast<int>(goro::maxprocs()); }), 2);

    static_assert(std::is_same_v<goro::clock, std::chrono::steady_clock>);
    EXPECT_EQ(goro::this_goroutine::id(), 0u);
    EXPECT_FALSE(goro::in_goroutine());

    goro::run(opts, [] {
        EXPECT_TRUE(goro::in_goroutine());
        EXPECT_NE(goro::this_goroutine::id(), 0u);
        EXPECT_GE(goro::num_goroutines(), 1u);

        // go(fn, args...): the arguments are decay-copied / moved.
        std::atomic<int> sum{0};
        goro::wait_group wg;
        wg.add(2);
        auto add = [&](int a, std::unique_ptr<int> b) {
            sum += a + *b;
            wg.done();
        };
        goro::go(add, 1, std::make_unique<int>(2));
        std::string s = "abc";
        goro::go(
            [&](std::string copy) {
                sum += static_cast<int>(copy.size());
                wg.done();
            },
            s);
        wg.wait();
        EXPECT_EQ(sum.load(), 6);

        goro::yield();
        const auto t0 = goro::clock::now();
        goro::sleep_for(2ms);
        goro::sleep_until(goro::clock::now() + 1ms);
        EXPECT_GE(goro::clock::now() - t0, 3ms);
    });
}

TEST(ApiContract, RunUnwindsParkedGoroutines) {
    std::atomic<int> destroyed{0};
    struct guard {
        std::atomic<int>* n;
        ~guard() { n->fetch_add(1); }
    };
    goro::run([&] {
        for (int i = 0; i < 10; ++i)
            goro::go([&] {
                guard g{&destroyed};
                goro::chan<int> nil;
                nil.recv();  // parks forever
            });
        goro::sleep_for(1ms);
    });
    EXPECT_EQ(destroyed.load(), 10);
}

TEST(ApiContract, GoFromPlainThreadStartsRuntimeLazily) {
    std::atomic<bool> ran{false};
    goro::wait_group wg;
    wg.add(1);
    goro::go([&] {
        ran = goro::in_goroutine();
        wg.done();
    });
    wg.wait();  // blocks this plain thread
    EXPECT_TRUE(ran.load());
}

TEST(ApiContract, Channels) {
    goro::run([] {
        goro::chan<int> ch = goro::make_chan<int>();
        goro::chan<int> buf = goro::make_chan<int>(4);
        goro::chan<int> nil;
        EXPECT_TRUE(nil.is_nil());
        EXPECT_FALSE(ch.is_nil());
        EXPECT_EQ(buf.capacity(), 4u);
        EXPECT_EQ(ch.capacity(), 0u);

        goro::go([ch] { ch.send(42); });
        std::optional<int> v = ch.recv();
        ASSERT_TRUE(v);
        EXPECT_EQ(*v, 42);

        int x = 5;
        EXPECT_TRUE(buf.try_send(x));             // const T&
        EXPECT_TRUE(buf.try_send(std::move(x)));  // T&&
        buf.send(6);
        EXPECT_EQ(buf.size(), 3u);

        goro::try_recv_result<int> r = buf.try_recv();
        EXPECT_TRUE(static_cast<bool>(r));
        EXPECT_EQ(*r, 5);
        EXPECT_EQ(r.value(), 5);

        auto copy = buf;
        EXPECT_TRUE(copy == buf);
        EXPECT_FALSE(copy == ch);

        goro::send_chan<int> s = buf;
        goro::recv_chan<int> rc = buf;
        s.send(7);
        s.close();
        EXPECT_THROW(s.close(), goro::closed_channel_error);
        EXPECT_THROW(buf.send(1), goro::closed_channel_error);
        std::vector<int> got;
        for (int e : rc) got.push_back(e);
        EXPECT_EQ(got, (std::vector<int>{5, 6, 7}));
        EXPECT_FALSE(buf.recv().has_value());
        auto closed = rc.try_recv();
        EXPECT_FALSE(closed);
        EXPECT_TRUE(closed.closed());
        EXPECT_FALSE(closed.empty());
        EXPECT_THROW(nil.close(), goro::closed_channel_error);

        auto empty = goro::make_chan<int>(1).try_recv();
        EXPECT_TRUE(empty.empty());
        EXPECT_FALSE(empty.closed());

        // A failed try_send leaves its argument untouched, move-only T works.
        auto owners = goro::make_chan<std::unique_ptr<int>>(1);
        auto p = std::make_unique<int>(1);
        EXPECT_TRUE(owners.try_send(std::move(p)));
        auto q = std::make_unique<int>(2);
        EXPECT_FALSE(owners.try_send(std::move(q)));
        ASSERT_TRUE(q);
        EXPECT_EQ(*q, 2);
        EXPECT_EQ(**owners.recv(), 1);

        goro::chan<goro::unit> signal = goro::make_chan<goro::unit>();
        goro::go([signal] { signal.close(); });
        EXPECT_FALSE(signal.recv().has_value());
    });
}

TEST(ApiContract, Select) {
    goro::run([] {
        auto ch = goro::make_chan<int>(1);
        auto out = goro::make_chan<int>(1);
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        int value = 3;
        ch.send(1);
        int got = 0;
        std::size_t i =
            goro::select(goro::recv_case(ch, [&](std::optional<int> v) { got = v.value_or(-1); }),
                         goro::recv_case(goro::after(5s), [](auto) {}),
                         goro::recv_case(ctx.done(), [](auto) {}));
        EXPECT_EQ(i, 0u);
        EXPECT_EQ(got, 1);

        bool sent = false;
        i = goro::select(goro::send_case(out, value, [&] { sent = true; }),
                         goro::recv_case(ctx.done(), [](auto) {}));
        EXPECT_EQ(i, 0u);
        EXPECT_TRUE(sent);
        EXPECT_EQ(*out.recv(), 3);

        bool defaulted = false;
        i = goro::select(goro::recv_case(ch, [](std::optional<int>) {}),
                         goro::send_case(out, value, [] {}),
                         goro::default_case([&] { defaulted = true; }));
        // out has room again, so the send case is ready.
        EXPECT_EQ(i, 1u);
        EXPECT_FALSE(defaulted);
        i = goro::select(goro::recv_case(ch), goro::default_case([&] { defaulted = true; }));
        EXPECT_EQ(i, 1u);
        EXPECT_TRUE(defaulted);

        cancel();
        i = goro::select(goro::recv_case(ctx.done(), [](auto v) { EXPECT_FALSE(v); }),
                         goro::recv_case(goro::chan<int>()));
        EXPECT_EQ(i, 0u);

        // Dynamic select over a runtime-sized set of cases.
        std::vector<goro::chan<int>> inputs;
        for (int k = 0; k < 4; ++k) inputs.push_back(goro::make_chan<int>(1));
        inputs[2].send(9);
        std::vector<goro::select_case<int>> cases;
        for (auto& c : inputs) cases.push_back(goro::select_case<int>::recv(c));
        std::size_t k = goro::select(std::span<goro::select_case<int>>(cases));
        EXPECT_EQ(k, 2u);
    });
}

TEST(ApiContract, Time) {
    goro::run([] {
        goro::recv_chan<goro::clock::time_point> a = goro::after(1ms);
        EXPECT_TRUE(a.recv().has_value());

        goro::timer t(1h);
        EXPECT_TRUE(t.stop());
        EXPECT_FALSE(t.stop());
        EXPECT_FALSE(t.reset(1ms));
        EXPECT_TRUE(t.c().recv().has_value());

        goro::ticker k(1ms);
        EXPECT_TRUE(k.c().recv().has_value());
        k.reset(2ms);
        EXPECT_TRUE(k.c().recv().has_value());
        k.stop();

        auto fired = goro::make_chan<bool>(1);
        goro::timer f = goro::after_func(1ms, [fired] { fired.send(goro::in_goroutine()); });
        EXPECT_EQ(fired.recv(), std::optional<bool>(true));
        EXPECT_FALSE(f.stop());
    });
}

TEST(ApiContract, Sync) {
    goro::run([] {
        goro::wait_group wg;
        std::atomic<int> n{0};
        wg.add(1);
        wg.go([&] { n += 1; });
        wg.done();
        wg.wait();
        EXPECT_EQ(n.load(), 1);
        EXPECT_THROW(wg.done(), goro::negative_counter_error);
        EXPECT_THROW(wg.done(), std::logic_error);

        goro::mutex m;
        { std::lock_guard lock(m); }
        {
            std::unique_lock lock(m);
            EXPECT_TRUE(lock.owns_lock());
        }
        goro::rw_mutex rw;
        {
            std::shared_lock r1(rw);
            std::shared_lock r2(rw);
            EXPECT_FALSE(rw.try_lock());
        }
        { std::unique_lock w(rw); }
        goro::mutex m2;
        { std::scoped_lock both(m, m2); }

        goro::once o;
        int calls = 0;
        o.call([&] { ++calls; });
        o.call([&] { ++calls; });
        EXPECT_EQ(calls, 1);

        goro::cond c(m);
        bool ready = false;
        goro::go([&] {
            std::lock_guard lock(m);
            ready = true;
            c.signal();
        });
        {
            std::unique_lock lock(m);
            while (!ready) c.wait(lock);
        }
        c.broadcast();

        goro::semaphore s(3);
        s.acquire();
        s.acquire(2);
        EXPECT_FALSE(s.try_acquire(1));
        s.release(2);
        EXPECT_TRUE(s.try_acquire(2));
        s.release(3);
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        std::error_code ec = s.acquire(ctx, 3);
        EXPECT_FALSE(ec);
        cancel();
        ec = s.acquire(ctx, 1);
        EXPECT_EQ(ec, goro::errc::canceled);
        s.release(3);
    });
}

TEST(ApiContract, Context) {
    goro::run([] {
        goro::context ctx = goro::background();
        goro::context td = goro::todo();
        EXPECT_TRUE(ctx.done().is_nil());
        EXPECT_FALSE(ctx.deadline().has_value());
        EXPECT_FALSE(td.err());

        auto [c1, cancel1] = goro::with_cancel(ctx);
        goro::cancel_func copy = cancel1;
        auto [c2, cancel2] = goro::with_timeout(c1, 5s);
        auto [c3, cancel3] = goro::with_deadline(c2, goro::clock::now() + 1h);
        EXPECT_TRUE(c3.deadline().has_value());
        EXPECT_LE(*c3.deadline(), goro::clock::now() + 5s);  // never outlives its parent

        static const goro::context_key<std::string> key;
        goro::context v = goro::with_value(c3, key, std::string("hello"));
        const std::string* found = v.value(key);
        ASSERT_NE(found, nullptr);
        EXPECT_EQ(*found, "hello");
        static const goro::context_key<int> other;
        EXPECT_EQ(v.value(other), nullptr);

        goro::context w = goro::without_cancel(v);
        std::atomic<bool> after{false};
        auto stop = goro::context_after_func(c2, [&] { after = true; });

        copy();
        cancel1();  // idempotent
        EXPECT_FALSE(c3.done().recv().has_value());
        EXPECT_EQ(c1.err(), goro::errc::canceled);
        EXPECT_EQ(c3.err(), goro::errc::canceled);
        EXPECT_FALSE(w.err());
        EXPECT_EQ(*w.value(key), "hello");
        EXPECT_FALSE(stop());  // already started
        for (int i = 0; i < 2000 && !after; ++i) goro::sleep_for(1ms);
        EXPECT_TRUE(after.load());
        cancel2();
        cancel3();

        auto [dc, dcancel] = goro::with_timeout(goro::background(), 1ms);
        dc.done().recv();
        EXPECT_EQ(dc.err(), goro::errc::deadline_exceeded);
        dcancel();

        auto [cc, ccancel] = goro::with_cancel_cause(goro::background());
        ccancel(std::make_error_code(std::errc::timed_out));
        EXPECT_EQ(cc.err(), goro::errc::canceled);
        (void)goro::cause(cc);
        auto [ce, cecancel] = goro::with_cancel_cause(goro::background());
        cecancel(std::make_exception_ptr(std::runtime_error("why")));
        EXPECT_TRUE(ce.err());
        (void)goro::cause(ce);

        EXPECT_EQ(std::string(goro::make_error_code(goro::errc::canceled).category().name()),
                  "goro");
    });
}

TEST(ApiContract, Errgroup) {
    goro::run([] {
        goro::errgroup g;
        std::atomic<int> n{0};
        g.go([&] { n += 1; });
        g.go([&]() -> std::error_code {
            n += 1;
            return {};
        });
        g.wait();
        EXPECT_EQ(n.load(), 2);

        auto [eg, ctx] = goro::errgroup::with_context(goro::background());
        eg.set_limit(1);
        auto gate = goro::make_chan<goro::unit>();
        eg.go([gate] { gate.recv(); });
        EXPECT_FALSE(eg.try_go([] {}));
        gate.close();
        eg.go([]() -> std::error_code { return std::make_error_code(std::errc::io_error); });
        EXPECT_THROW(eg.wait(), std::system_error);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);

        goro::errgroup h;
        h.set_limit(-1);
        h.go([] { throw std::runtime_error("boom"); });
        EXPECT_THROW(h.wait(), std::runtime_error);
    });
}
