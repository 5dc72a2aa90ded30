// Tests of Go 1.23's timer contract where stop() and reset() race the
// timer's own firing (issue 13): from goroutines and from plain threads, on
// 1, 2 and 8 workers.
//
//   - stop() is true unless the value was received (or the timer was already
//     stopped); reset() is true unless the value was received (or the timer
//     was stopped) — whoever wins the race, nobody received means true;
//   - after stop() or reset() returns, no value from before it is received;
//   - so Go's drain idiom `if (!t.stop()) t.c().recv();` and a reset loop
//     never block: a watchdog fails any round that takes more than 10 s.
//
// Round counts: GORO_TIMER_ROUNDS overrides the drain-idiom and reset-loop
// counts (the million-round runs are made by hand with it).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

// A small per-worker random source (xorshift).
struct rng {
    std::uint64_t s;
    explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    std::uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<std::uint32_t>(s >> 32);
    }
};

// Busy-waits for roughly n short steps, so stop()/reset() lands anywhere in
// the few microseconds around the firing.
void spin(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) goro::detail::cpu_relax();
}

// A timer duration of 0..3 us: due at once or about to be.
std::chrono::nanoseconds jitter(rng& r) {
    return std::chrono::nanoseconds(r.next() % 4000);
}

// Runs body(i) for i in [0, n) on n goroutines, or on n plain threads,
// inside run(procs(p)); returns when all are done. The plain threads are
// waited for over a goro channel, so the waiting goroutine frees its worker
// and the timers keep firing even with one worker.
template <class F>
void run_workers(unsigned p, bool threads, int n, F body) {
    goro::run(procs(p), [&] {
        if (!threads) {
            goro::wait_group wg;
            for (int i = 0; i < n; ++i) wg.go([&body, i] { body(i); });
            wg.wait();
            return;
        }
        auto done = goro::make_chan<int>(static_cast<std::size_t>(n));
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i)
            ts.emplace_back([&body, i, done] {
                body(i);
                done.send(i);
            });
        for (int i = 0; i < n; ++i) done.recv();
        for (auto& t : ts) t.join();
    });
}

class TimerRace : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {
  protected:
    unsigned procs_n() const { return std::get<0>(GetParam()); }
    bool threads() const { return std::get<1>(GetParam()); }
    // Two plain threads; goroutines on half the workers, so that the other
    // workers are free to fire the timers while the goroutines run (a worker
    // busy running a goroutine fires timers only between goroutines).
    int workers() const { return threads() ? 2 : static_cast<int>(std::max(1u, procs_n() / 2)); }
};

std::string race_name(const ::testing::TestParamInfo<std::tuple<unsigned, bool>>& info) {
    return "Procs" + std::to_string(std::get<0>(info.param)) +
           (std::get<1>(info.param) ? "Threads" : "Goroutines");
}

INSTANTIATE_TEST_SUITE_P(All, TimerRace,
                         ::testing::Combine(::testing::Values(1u, 2u, 8u), ::testing::Bool()),
                         race_name);

// stop() racing the firing of a fresh timer: nobody receives from the
// channel, so stop() must be true every time (the value was pending, in
// flight, or waiting in the channel), and nothing may be received after it.
TEST_P(TimerRace, StopIsTrueUnlessTheValueWasReceived) {
    const long rounds = scaled(20000, 2) / workers();
    std::atomic<long> stop_false{0}, stale{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 1);
        for (long i = 0; i < rounds; ++i) {
            goro::timer t(jitter(r));
            spin(r.next() % 4000);
            if ((r.next() & 15) == 0) goro::yield();  // one worker: let it fire first
            if (!t.stop()) stop_false.fetch_add(1);
            if (!t.c().try_recv().empty()) stale.fetch_add(1);
        }
    });
    EXPECT_EQ(stop_false.load(), 0) << "stop() was false though nobody received the value";
    EXPECT_EQ(stale.load(), 0) << "a value from before stop() was received after it";
}

// reset() racing the firing: the value of the previous setting is never
// received, so reset() must be true every time, and no value from before it
// is received after it.
TEST_P(TimerRace, ResetIsTrueUnlessTheValueWasReceived) {
    const long rounds = scaled(20000, 2) / workers();
    std::atomic<long> reset_false{0}, stale{0}, stop_false{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 7);
        goro::timer t(1h);
        for (long i = 0; i < rounds; ++i) {
            if (!t.reset(jitter(r))) reset_false.fetch_add(1);  // the 1h setting was pending
            spin(r.next() % 4000);
            if ((r.next() & 15) == 0) goro::yield();
            if (!t.reset(1h)) reset_false.fetch_add(1);  // the jitter setting: never received
            if (!t.c().try_recv().empty()) stale.fetch_add(1);
        }
        if (!t.stop()) stop_false.fetch_add(1);
    });
    EXPECT_EQ(reset_false.load(), 0) << "reset() was false though nobody received the value";
    EXPECT_EQ(stale.load(), 0) << "a value from before reset() was received after it";
    EXPECT_EQ(stop_false.load(), 0);
}

// A receiver blocked on the channel while stop() races the firing: exactly
// one of them wins — the receiver gets the value and stop() is false, or
// stop() is true and the receiver gets nothing.
TEST_P(TimerRace, BlockedReceiverAndStopExactlyOneWins) {
    const long rounds = scaled(4000, 2) / workers();
    std::atomic<long> both{0}, neither{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 13);
        for (long i = 0; i < rounds; ++i) {
            goro::timer t(jitter(r));
            auto quit = goro::make_chan<goro::unit>();
            auto got = goro::make_chan<bool>(1);
            goro::go([c = t.c(), quit, got] {
                bool received = false;
                goro::select(goro::recv_case(c, [&](auto) { received = true; }),
                             goro::recv_case(quit));
                got.send(received);
            });
            spin(r.next() % 4000);
            bool stopped = t.stop();
            quit.close();
            bool received = *got.recv();
            if (stopped && received) both.fetch_add(1);
            if (!stopped && !received) neither.fetch_add(1);
        }
    });
    EXPECT_EQ(both.load(), 0) << "stop() was true but the receiver got the value";
    EXPECT_EQ(neither.load(), 0) << "stop() was false but nobody received the value";
}

// Go's pre-1.23 drain idiom, which Go 1.23 keeps harmless:
//     if !t.Stop() { <-t.C }
//     t.Reset(d)
// (TestTimerModifiedEarlier's loop). Nobody else receives, so stop() is
// always true and the drain never runs; if it ran it would block forever.
TEST_P(TimerRace, DrainIdiomNeverBlocks) {
    const long rounds = goro_test::rounds_from_env(20000, 2) / workers();
    goro_test::watchdog dog("drain idiom");
    std::atomic<long> drained{0}, missing{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 19);
        goro::timer t(1h);
        for (long i = 0; i < rounds; ++i) {
            if (!t.stop()) {
                drained.fetch_add(1);
                t.c().recv();
            }
            t.reset(jitter(r));
            spin(r.next() % 4000);
            if ((r.next() & 15) == 0) goro::yield();
            dog.pet();
        }
        // The timer still works: a fresh setting fires and is received.
        t.stop();
        t.reset(0ns);
        if (!t.c().recv()) missing.fetch_add(1);
    });
    EXPECT_EQ(drained.load(), 0) << "stop() was false though nobody received the value";
    EXPECT_EQ(missing.load(), 0);
}

// A plain reset loop: reset, then receive. Each receive gets the value of
// the setting just made (never an older one) and never blocks; reset() is
// false after a received value and true when the previous value was left
// unreceived (every third round here).
TEST_P(TimerRace, ResetLoopNeverBlocks) {
    const long rounds = goro_test::rounds_from_env(20000, 2) / workers();
    goro_test::watchdog dog("reset loop");
    std::atomic<long> wrong_result{0}, stale{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 23);
        goro::timer t(1h);
        bool received = false;  // the previous setting's value was received
        for (long i = 0; i < rounds; ++i) {
            auto before = goro::clock::now();
            bool active = t.reset(jitter(r));
            if (active == received) wrong_result.fetch_add(1);
            if (i % 3 == 2) {
                spin(r.next() % 4000);  // leave this one unreceived
                received = false;
            } else {
                auto v = t.c().recv();
                if (!v || *v < before) stale.fetch_add(1);
                received = true;
            }
            dog.pet();
        }
    });
    EXPECT_EQ(wrong_result.load(), 0)
        << "reset() must be true iff the previous value was not received";
    EXPECT_EQ(stale.load(), 0) << "received a value from before the reset";
}

// Tickers: after stop() or reset() returns, no tick from before it is ever
// received, however the call lands against the ticking.
TEST_P(TimerRace, TickerStopAndResetLeaveNoStaleTick) {
    const long rounds = scaled(4000, 2) / workers();
    std::atomic<long> stale{0};
    run_workers(procs_n(), threads(), workers(), [&](int w) {
        rng r(static_cast<std::uint64_t>(w) + 29);
        goro::ticker k(1h);
        for (long i = 0; i < rounds; ++i) {
            k.reset(std::chrono::nanoseconds(1 + r.next() % 3000));
            spin(r.next() % 4000);
            if (r.next() & 1) {
                k.stop();
            } else {
                k.reset(1h);
            }
            if (!k.c().try_recv().empty()) stale.fetch_add(1);
        }
    });
    EXPECT_EQ(stale.load(), 0) << "a tick from before stop()/reset() was received after it";
}

}  // namespace

// Go 1.23: timer channels present as unbuffered — len and cap are 0, even
// while a value is ready to be received.
TEST(TimerChannel, LenAndCapAreZeroLikeGo123) {
    goro::run(procs(2), [] {
        auto a = goro::after(0ns);
        goro::timer t(0ns);
        goro::ticker k(1ms);
        goro::sleep_for(10ms);  // all three have a value ready
        for (auto c : {a, t.c(), k.c()}) {
            EXPECT_EQ(c.capacity(), 0u);
            EXPECT_EQ(c.size(), 0u);
        }
        EXPECT_TRUE(a.recv().has_value());
        EXPECT_TRUE(t.c().recv().has_value());
        EXPECT_TRUE(k.c().recv().has_value());
    });
}
