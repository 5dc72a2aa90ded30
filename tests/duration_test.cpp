// Tests that durations too large for the clock saturate at "never", as Go's
// do: sleeps, timers, tickers, after, after_func and context deadlines given
// nanoseconds::max(), hours::max(), duration<double>(1e30) or 300 years do
// not fire (here: within 50 ms), and can then be stopped or cancelled
// cleanly. Negative and zero durations still fire at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using sclock = goro::clock;
using goro_test::procs;

namespace {

constexpr auto quiet = 50ms;  // "does not fire": nothing happens for this long

using dsec = std::chrono::duration<double>;
const auto huge_double = dsec(1e30);
const auto three_hundred_years = std::chrono::years(300);

// True if c delivers nothing within `quiet`.
bool silent(const goro::recv_chan<sclock::time_point>& c) {
    return goro::select(goro::recv_case(c), goro::recv_case(goro::after(quiet))) == 1;
}

// Starts a goroutine that sleeps via f and records whether it came back;
// true if it is still asleep after `quiet`. run() unwinds it at the end.
template <class F>
bool sleeper_stays_asleep(F f) {
    auto returned = std::make_shared<std::atomic<bool>>(false);
    goro::go([f, returned] {
        f();
        returned->store(true);
    });
    goro::sleep_for(quiet);
    return !returned->load();
}

}  // namespace

TEST(HugeDuration, SleepForDoesNotReturnFromAGoroutine) {
    goro::run(procs(2), [] {
        EXPECT_TRUE(sleeper_stays_asleep([] { goro::sleep_for(std::chrono::nanoseconds::max()); }));
        EXPECT_TRUE(sleeper_stays_asleep([] { goro::sleep_for(std::chrono::hours::max()); }));
        EXPECT_TRUE(sleeper_stays_asleep([] { goro::sleep_for(huge_double); }));
        EXPECT_TRUE(sleeper_stays_asleep([] { goro::sleep_for(three_hundred_years); }));
        EXPECT_TRUE(sleeper_stays_asleep([] { goro::sleep_until(sclock::time_point::max()); }));
    });
    EXPECT_EQ(goro::num_goroutines(), 0u) << "the sleepers were unwound by run()";
}

TEST(HugeDuration, SleepDoesNotReturnFromAPlainThread) {
    // The threads never wake; they are detached and end with the process.
    auto returned = std::make_shared<std::atomic<int>>(0);
    std::thread([returned] {
        goro::sleep_for(std::chrono::nanoseconds::max());
        returned->fetch_add(1);
    }).detach();
    std::thread([returned] {
        goro::sleep_for(std::chrono::hours::max());
        returned->fetch_add(1);
    }).detach();
    std::thread([returned] {
        goro::sleep_for(huge_double);
        returned->fetch_add(1);
    }).detach();
    std::thread([returned] {
        goro::sleep_until(sclock::time_point::max());
        returned->fetch_add(1);
    }).detach();
    std::this_thread::sleep_for(quiet);
    EXPECT_EQ(returned->load(), 0);
}

TEST(HugeDuration, AfterNeverFires) {
    goro::run(procs(2), [] {
        EXPECT_TRUE(silent(goro::after(std::chrono::nanoseconds::max())));
        EXPECT_TRUE(silent(goro::after(std::chrono::hours::max())));
        EXPECT_TRUE(silent(goro::after(huge_double)));
        EXPECT_TRUE(silent(goro::after(three_hundred_years)));
    });
}

TEST(HugeDuration, TimerNeverFiresAndStopsCleanly) {
    goro::run(procs(2), [] {
        goro::timer a(std::chrono::hours::max());
        goro::timer b(std::chrono::nanoseconds::max());
        goro::timer c(huge_double);
        EXPECT_TRUE(silent(a.c()));
        EXPECT_TRUE(silent(b.c()));
        EXPECT_TRUE(silent(c.c()));
        EXPECT_TRUE(a.stop()) << "still pending";
        EXPECT_TRUE(b.reset(three_hundred_years)) << "still pending";
        EXPECT_TRUE(silent(b.c()));
        EXPECT_TRUE(b.stop());
        EXPECT_TRUE(c.stop());
    });
}

TEST(HugeDuration, AfterFuncNeverRuns) {
    std::atomic<int> ran{0};
    goro::run(procs(2), [&] {
        auto t = goro::after_func(std::chrono::hours::max(), [&] { ran.fetch_add(1); });
        auto u = goro::after_func(huge_double, [&] { ran.fetch_add(1); });
        goro::sleep_for(quiet);
        EXPECT_TRUE(t.stop());
        EXPECT_TRUE(u.stop());
    });
    EXPECT_EQ(ran.load(), 0);
}

TEST(HugeDuration, TickerNeverTicks) {
    goro::run(procs(2), [] {
        goro::ticker k(std::chrono::hours::max());
        EXPECT_TRUE(silent(k.c()));
        k.reset(std::chrono::nanoseconds::max());
        EXPECT_TRUE(silent(k.c()));
        k.reset(huge_double);
        EXPECT_TRUE(silent(k.c()));
        k.stop();
    });
}

TEST(HugeDuration, ContextTimeoutNeverExpires) {
    goro::run(procs(2), [] {
        auto check = [](auto timeout) {
            auto [ctx, cancel] = goro::with_timeout(goro::background(), timeout);
            auto done = ctx.done();
            EXPECT_EQ(goro::select(goro::recv_case(done), goro::recv_case(goro::after(quiet))), 1u)
                << "timed out at once";
            EXPECT_FALSE(ctx.err());
            ASSERT_TRUE(ctx.deadline().has_value());
            EXPECT_EQ(*ctx.deadline(), sclock::time_point::max());
            cancel();
            EXPECT_FALSE(done.recv().has_value());  // closed
            EXPECT_EQ(ctx.err(), goro::errc::canceled);
        };
        check(std::chrono::nanoseconds::max());
        check(std::chrono::hours::max());
        check(huge_double);
        check(three_hundred_years);
    });
}

TEST(HugeDuration, ContextDeadlineAtTheEndOfTimeNeverExpires) {
    goro::run(procs(2), [] {
        auto [ctx, cancel] = goro::with_deadline(goro::background(), sclock::time_point::max());
        auto done = ctx.done();
        EXPECT_EQ(goro::select(goro::recv_case(done), goro::recv_case(goro::after(quiet))), 1u)
            << "expired at once";
        EXPECT_FALSE(ctx.err());
        cancel();
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
    });
}

// Negative and zero durations keep firing at once, including ones too
// negative for the clock.
TEST(HugeDuration, NegativeAndZeroStillFireAtOnce) {
    goro::run(procs(2), [] {
        auto t0 = sclock::now();
        goro::sleep_for(0ns);
        goro::sleep_for(-1s);
        goro::sleep_for(std::chrono::nanoseconds::min());
        goro::sleep_for(std::chrono::hours::min());
        goro::sleep_for(dsec(-1e30));
        goro::sleep_until(sclock::time_point::min());
        for (auto c : {goro::after(0ns), goro::after(-1h), goro::after(std::chrono::hours::min()),
                       goro::after(std::chrono::nanoseconds::min()), goro::after(dsec(-1e30))})
            EXPECT_TRUE(c.recv().has_value());
        goro::timer t(std::chrono::hours::min());
        EXPECT_TRUE(t.c().recv().has_value());
        auto [ctx, cancel] = goro::with_timeout(goro::background(), std::chrono::hours::min());
        ctx.done().recv();
        EXPECT_EQ(ctx.err(), goro::errc::deadline_exceeded);
        auto [ctx2, cancel2] = goro::with_timeout(goro::background(), 0s);
        ctx2.done().recv();
        EXPECT_EQ(ctx2.err(), goro::errc::deadline_exceeded);
        EXPECT_LT(sclock::now() - t0, 10s);  // a hang, not a speed target
    });
}
