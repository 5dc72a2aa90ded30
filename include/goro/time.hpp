// goro/time.hpp — Go's time.After, Timer, Ticker and AfterFunc.
//
//   goro::select(goro::recv_case(ch, on_value),
//                goro::recv_case(goro::after(100ms), [](auto) { timed_out(); }));
//
//   goro::timer t(1s);        t.c().recv();          // fires once
//   goro::ticker k(10ms);     for (auto tick : k.c()) ...   // every 10 ms until stop()
//   auto t2 = goro::after_func(5s, [] { ... });      // runs in its own goroutine
//
// Timers live in the runtime's timer heap (no OS timer each). A ticker drops
// ticks for a slow reader. The handles are cheap copyable references to one
// timer; the timer keeps running if every handle is dropped (a dropped
// after() channel costs its heap entry until it fires). Everything here
// starts the runtime lazily when used outside goro::run.
//
// Durations of any Rep and Period are rounded up to clock ticks and saturate:
// one too large for the clock (hours::max(), duration<double>(1e30), 300
// years) means "never" — the timer stays pending and never fires, as in Go.
// Zero and negative durations fire at once.
//
// The contract is Go 1.23's ("synchronous timer channels"), for timer,
// ticker and after:
//   - c() presents as unbuffered: c().size() and c().capacity() are 0. A
//     value that has fired and not been received waits to be received (a
//     receive or select after the deadline gets it at once).
//   - After stop() or reset() returns, no value from before the call is ever
//     received: a fired, unreceived value is taken back, and a firing that
//     races the call delivers nothing. (ticker: no tick from before it.)
//   - timer::stop() is true unless the timer was already stopped or its
//     value has already been received; timer::reset() is true on the same
//     terms ("the timer was active"). So if the program has not received
//     the value and the timer is running, both are guaranteed to be true.
//   - The race, spelled out. stop() (or reset()) and the firing both take the
//     timer's lock; whichever gets it first wins:
//       stop() first: the firing finds itself stale and sends nothing;
//         stop() is true.
//       the firing first: it hands the value to a goroutine or thread that
//         is blocked receiving (or selecting) on c() at that moment — the
//         value was received, and stop() is false — or, with no receiver
//         waiting, leaves it in the channel, where stop() takes it back and
//         is true.
//     So stop() is false only if some receive got the value.
//   - Hence Go's old drain idiom, `if (!t.stop()) t.c().recv();`, is never
//     needed and never blocks, provided (as Go always required of it) that
//     nothing else receives from c() and the program has not already
//     received this setting's value or stopped the timer — stop() is then
//     always true and the drain never runs. (After the value was received,
//     stop() is false and that recv() would block forever, in Go as here.)
//     `if (!t.stop()) t.c().try_recv();` (Go: select with default) never
//     blocks. A reset loop — `t.reset(d); t.c().recv();` — gets the value of
//     the reset just made, never an older one, and never blocks.
//   - after_func timers: stop() is true if it stopped f before f was
//     started; false if f was started (in its own goroutine; stop() does not
//     wait for it) or the timer was stopped. reset() either reschedules f
//     (true) or schedules it to run again (false).
// Differences from Go: a value is stamped with the time its timer fired, not
// computed lazily on receipt (the same time to within scheduling delay).
// stop()/reset() on a moved-from timer or ticker throw misuse_error (Go
// panics on a zero Timer); its c() is the nil channel. A timer whose runtime
// has shut down (goro::run returned) is no longer active.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

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
[[noreturn]] void throw_moved_from(const char* who);
}  // namespace detail

// time.Timer: fires once, sending the time on c(), or (after_func) running a
// function in a new goroutine.
class timer {
  public:
    template <class Rep, class Period>
    // A timer that fires once, d from now.
    explicit timer(std::chrono::duration<Rep, Period> d)
        : s_(detail::make_timer_state(detail::saturating_duration(d), {}, nullptr, {})) {}

    // The channel the time is sent on (nil for an after_func timer). Its
    // size() and capacity() are 0, as in Go 1.23.
    recv_chan<clock::time_point> c() const { return detail::timer_channel(s_); }
    // Prevents the timer from firing. True unless the timer was already
    // stopped or its value was received (see the contract above); after it
    // returns, no value from before it is received.
    bool stop() { return detail::timer_state_stop(state("goro::timer::stop")); }
    // Restarts the timer to fire after d. True on the same terms as stop():
    // the timer was active and its value not received. After it returns, no
    // value from before it is received.
    template <class Rep, class Period>
    bool reset(std::chrono::duration<Rep, Period> d) {
        return detail::timer_state_reset(state("goro::timer::reset"),
                                         detail::saturating_duration(d), {});
    }

    // Internal: wraps a timer made by after_func.
    timer(detail::timer_tag, std::shared_ptr<detail::timer_state> s) : s_(std::move(s)) {}

  private:
    detail::timer_state& state(const char* who) const {
        if (!s_) [[unlikely]]
            detail::throw_moved_from(who);
        return *s_;
    }
    std::shared_ptr<detail::timer_state> s_;
};

// time.Ticker: sends the time on c() every period; drops ticks for a slow
// reader. After stop() or reset() returns, no tick from before it is received.
class ticker {
  public:
    // Requires: d > 0 (throws misuse_error otherwise). A period too large
    // for the clock never ticks.
    template <class Rep, class Period>
    explicit ticker(std::chrono::duration<Rep, Period> d)
        : ticker(detail::saturating_duration(d), 0) {}
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

    // Size and capacity 0, as in Go 1.23.
    recv_chan<clock::time_point> c() const { return detail::timer_channel(s_); }
    void stop() {
        if (!s_) detail::throw_moved_from("goro::ticker::stop");
        detail::timer_state_stop(*s_);
    }
    // Stops the ticker and restarts it with period d (next tick after d).
    template <class Rep, class Period>
    void reset(std::chrono::duration<Rep, Period> d) {
        if (!s_) detail::throw_moved_from("goro::ticker::reset");
        auto p = detail::saturating_duration(d);
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

// time.After: a channel that receives the time once, after d (size and
// capacity 0, as in Go 1.23).
template <class Rep, class Period>
recv_chan<clock::time_point> after(std::chrono::duration<Rep, Period> d) {
    return detail::timer_channel(
        detail::make_timer_state(detail::saturating_duration(d), {}, nullptr, {}));
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
                     detail::saturating_duration(d), {}, [shared] { (*shared)(); }, where));
}

}  // namespace goro
