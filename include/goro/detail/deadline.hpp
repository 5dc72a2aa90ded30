// goro/detail/deadline.hpp — goro's clock, and durations and deadlines that
// saturate instead of overflowing.
//
// Go saturates: time.Sleep(math.MaxInt64) sleeps forever; it does not wrap
// around into the past and return at once. Every place goro turns a caller's
// duration into a clock duration or a deadline goes through these helpers:
//
//   saturating_duration(d)  d rounded up to whole clock ticks, clamped to
//                           [clock::duration::min(), clock::duration::max()],
//                           for any arithmetic Rep and any Period
//                           (hours::max(), duration<double>(1e30), years).
//                           A NaN duration counts as zero.
//   saturating_add(t, d)    t + d, clamped to [time_point::min(), ::max()].
//   saturating_deadline(d)  saturating_add(clock::now(), saturating_duration(d)).
//
// Invariant: clock::time_point::max() means "never". The runtime's timer heap
// keys nodes by nanoseconds and reads that key as "no deadline", so a timer
// due then stays pending and never fires; periodic re-arming saturates to it
// too (scheduler/timers.cpp). Zero and negative durations still give
// deadlines at or before now, which fire at once.
// No locks.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace goro {
using clock = std::chrono::steady_clock;

// The runtime's "now": clock::now(), except inside a
// goro::testing::bubble, where it is the bubble's virtual time (which
// moves only when every goroutine of the bubble is durably blocked, never
// while one waits on a descriptor). Timers, sleeps, tickers, context
// deadlines and I/O deadlines are measured on it.
clock::time_point now() noexcept;
}  // namespace goro

namespace goro::detail {

inline clock::time_point runtime_now() noexcept {
    return goro::now();
}

template <class Rep, class Period>
constexpr clock::duration saturating_duration(std::chrono::duration<Rep, Period> d) noexcept {
    static_assert(std::is_arithmetic_v<Rep>, "goro: durations need an arithmetic representation");
    using target = clock::duration;
    using rep = target::rep;
    constexpr rep hi = target::max().count();
    constexpr rep lo = target::min().count();
    if constexpr (std::is_floating_point_v<Rep>) {
        // In long double (a 64-bit mantissa on x86-64: every int64 exactly);
        // the result is an integer below 2^63 before it is converted.
        const long double ticks =
            std::ceil(std::chrono::duration<long double, target::period>(d).count());
        if (std::isnan(ticks)) return target::zero();
        if (ticks >= static_cast<long double>(hi)) return target::max();
        if (ticks <= static_cast<long double>(lo)) return target::min();
        return target(static_cast<rep>(ticks));
    } else {
        // Exactly, in 128 bits: count * num / den, rounded up, then clamped.
        __extension__ typedef __int128 wide;
        using cf = std::ratio_divide<Period, target::period>;
        wide n;
        if (__builtin_mul_overflow(static_cast<wide>(d.count()), static_cast<wide>(cf::num), &n))
            return d.count() > 0 ? target::max() : target::min();
        wide q = n / cf::den;
        if (n % cf::den > 0) ++q;
        if (q >= hi) return target::max();
        if (q <= lo) return target::min();
        return target(static_cast<rep>(q));
    }
}

constexpr clock::time_point saturating_add(clock::time_point t, clock::duration d) noexcept {
    using rep = clock::duration::rep;
    rep sum;
    if (__builtin_add_overflow(t.time_since_epoch().count(), d.count(), &sum))
        return d.count() > 0 ? clock::time_point::max() : clock::time_point::min();
    return clock::time_point(clock::duration(sum));
}

template <class Rep, class Period>
clock::time_point saturating_deadline(std::chrono::duration<Rep, Period> d) noexcept {
    return saturating_add(runtime_now(), saturating_duration(d));
}

}  // namespace goro::detail
