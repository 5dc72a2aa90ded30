// goro/time.hpp — Go's time.After, Timer, Ticker and AfterFunc.
//
//   goro::select(goro::recv_case(ch, on_value),
//                goro::recv_case(goro::after(100ms), [](auto) { timed_out(); }));
//
//   goro::timer t(1s);        t.c().recv();          // fires once
//   goro::ticker k(10ms);     for (auto tick : k.c()) ...   // every 10 ms until stop()
//   auto t2 = goro::after_func(5s, [] { ... });      // runs in its own goroutine
//
// Timers live in the runtime's timer heap (no OS timer each). Channels of
// timers and tickers have capacity 1: a ticker drops ticks for a slow reader.
// As in Go 1.23, stop() and reset() guarantee that no value sent before them
// is received after them (the channel is drained). The handles are cheap
// copyable references to one timer; the timer keeps running if every handle
// is dropped (a dropped after() channel costs its heap entry until it fires).
// Everything here starts the runtime lazily when used outside goro::run.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "goro/chan.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/runtime.hpp"
#include "goro/source_location.hpp"

namespace goro {

namespace detail {
struct timer_state;
struct timer_tag {};
std::shared_ptr<timer_state> make_timer_state(clock::duration d, clock::duration period,
                                              std::function<void()> fn,
                                              const source_location& where);
recv_chan<clock::time_point> timer_channel(const std::shared_ptr<timer_state>& s);
bool timer_state_stop(timer_state& s);
bool timer_state_reset(timer_state& s, clock::duration d, clock::duration period);
}  // namespace detail

// time.Timer: fires once, sending the time on c(), or (after_func) running a
// function in a new goroutine.
class timer {
  public:
    template <class Rep, class Period>
    explicit timer(std::chrono::duration<Rep, Period> d)
        : s_(detail::make_timer_state(std::chrono::ceil<clock::duration>(d), {}, nullptr, {})) {}

    // The channel the time is sent on (nil for an after_func timer).
    recv_chan<clock::time_point> c() const { return detail::timer_channel(s_); }
    // Prevents the timer from firing. True if this call stopped it; false if
    // it had already fired (and its value was received) or was stopped.
    bool stop() { return detail::timer_state_stop(*s_); }
    // Restarts the timer to fire after d. True if it was active before.
    template <class Rep, class Period>
    bool reset(std::chrono::duration<Rep, Period> d) {
        return detail::timer_state_reset(*s_, std::chrono::ceil<clock::duration>(d), {});
    }

    // Internal: wraps a timer made by after_func.
    timer(detail::timer_tag, std::shared_ptr<detail::timer_state> s) : s_(std::move(s)) {}

  private:
    std::shared_ptr<detail::timer_state> s_;
};

// time.Ticker: sends the time on c() every period; drops ticks for a slow reader.
class ticker {
  public:
    // Requires: d > 0 (throws misuse_error otherwise).
    template <class Rep, class Period>
    explicit ticker(std::chrono::duration<Rep, Period> d)
        : ticker(std::chrono::ceil<clock::duration>(d), 0) {}
    // A ticker is stopped when its owner goes away (copies of c() then
    // receive no more ticks).
    ~ticker() {
        if (s_) stop();
    }
    ticker(ticker&&) noexcept = default;
    ticker& operator=(ticker&& o) noexcept {
        if (this != &o) {
            if (s_) stop();
            s_ = std::move(o.s_);
        }
        return *this;
    }

    recv_chan<clock::time_point> c() const { return detail::timer_channel(s_); }
    void stop() { detail::timer_state_stop(*s_); }
    template <class Rep, class Period>
    void reset(std::chrono::duration<Rep, Period> d) {
        auto p = std::chrono::ceil<clock::duration>(d);
        check(p, "goro::ticker::reset");
        detail::timer_state_reset(*s_, p, p);
    }

  private:
    ticker(clock::duration d, int) {
        check(d, "goro::ticker");
        s_ = detail::make_timer_state(d, d, nullptr, {});
    }
    static void check(clock::duration d, const char* who) {
        if (d <= clock::duration::zero())
            throw misuse_error(std::string(who) + ": non-positive interval");
    }
    std::shared_ptr<detail::timer_state> s_;
};

// time.After: a channel that receives the time once, after d.
template <class Rep, class Period>
recv_chan<clock::time_point> after(std::chrono::duration<Rep, Period> d) {
    return detail::timer_channel(
        detail::make_timer_state(std::chrono::ceil<clock::duration>(d), {}, nullptr, {}));
}

// time.AfterFunc: runs fn in its own goroutine after d. stop() before then
// prevents it (and returns true).
template <class Rep, class Period, class F>
timer after_func(std::chrono::duration<Rep, Period> d, F&& fn,
                 source_location where = source_location::current()) {
    detail::require_callable(fn, "goro::after_func");
    // Shared so that std::function can copy it: fn itself may be move-only.
    auto shared = std::make_shared<std::decay_t<F>>(std::forward<F>(fn));
    return timer(detail::timer_tag{},
                 detail::make_timer_state(
                     std::chrono::ceil<clock::duration>(d), {}, [shared] { (*shared)(); }, where));
}

}  // namespace goro
