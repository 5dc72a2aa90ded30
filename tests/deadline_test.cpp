// Tests of goro/detail/deadline.hpp: durations of any Rep and Period rounded
// up to clock ticks and clamped, and deadlines that saturate at
// time_point::max() ("never") instead of overflowing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>

#include "goro/detail/deadline.hpp"

using namespace std::chrono_literals;
using goro::detail::saturating_add;
using goro::detail::saturating_deadline;
using goro::detail::saturating_duration;
using ns = std::chrono::nanoseconds;
using tp = goro::clock::time_point;
using dsec = std::chrono::duration<double>;

// Integral representations are exact and usable in constant expressions.
static_assert(saturating_duration(std::chrono::hours(1)) == 3600s);
static_assert(saturating_duration(std::chrono::hours::max()) == ns::max());
static_assert(saturating_duration(std::chrono::hours::min()) == ns::min());
static_assert(saturating_duration(ns::max()) == ns::max());
static_assert(saturating_duration(ns::min()) == ns::min());
static_assert(saturating_duration(std::chrono::years(300)) == ns::max());
static_assert(saturating_duration(std::chrono::years(200)) == std::chrono::years(200));

TEST(SaturatingDuration, IntegralCountsAreExactUpToTheLimit) {
    // The largest whole number of hours that fits, and one more.
    const auto fit = std::chrono::duration_cast<std::chrono::hours>(ns::max());
    EXPECT_EQ(saturating_duration(fit), ns(fit));
    EXPECT_EQ(saturating_duration(fit + std::chrono::hours(1)), ns::max());
    EXPECT_EQ(saturating_duration(-fit - std::chrono::hours(1)), ns::min());
    // Unsigned counts beyond int64.
    using u64ns = std::chrono::duration<std::uint64_t, std::nano>;
    EXPECT_EQ(saturating_duration(u64ns(std::numeric_limits<std::uint64_t>::max())), ns::max());
    EXPECT_EQ(saturating_duration(u64ns(5)), 5ns);
    // A ratio whose numerator times the count overflows 64 bits although the
    // result fits (std::chrono::ceil would overflow here): 9e9 s in thirds.
    using thirds = std::chrono::duration<std::int64_t, std::ratio<1, 3>>;
    EXPECT_EQ(saturating_duration(thirds(27'000'000'000)), ns(9'000'000'000'000'000'000));
}

TEST(SaturatingDuration, RoundsUpToWholeTicks) {
    using ps = std::chrono::duration<std::int64_t, std::pico>;
    EXPECT_EQ(saturating_duration(ps(1001)), 2ns);
    EXPECT_EQ(saturating_duration(ps(1000)), 1ns);
    EXPECT_EQ(saturating_duration(ps(-1001)), -1ns);
    EXPECT_EQ(saturating_duration(dsec(1.5e-9)), 2ns);
    EXPECT_EQ(saturating_duration(dsec(-1.5e-9)), -1ns);
    EXPECT_EQ(saturating_duration(dsec(0.25)), 250ms);
}

TEST(SaturatingDuration, FloatingCountsSaturate) {
    EXPECT_EQ(saturating_duration(dsec(1e30)), ns::max());
    EXPECT_EQ(saturating_duration(dsec(-1e30)), ns::min());
    EXPECT_EQ(saturating_duration(dsec(std::numeric_limits<double>::infinity())), ns::max());
    EXPECT_EQ(saturating_duration(dsec(-std::numeric_limits<double>::infinity())), ns::min());
    EXPECT_EQ(saturating_duration(dsec(std::numeric_limits<double>::quiet_NaN())), 0ns);
    // Just below and at 2^63 ns: no undefined conversion at the edge.
    EXPECT_EQ(saturating_duration(dsec(9223372036.854775807)), ns::max());
    EXPECT_LE(saturating_duration(dsec(9223372036.85477)), ns::max());
    EXPECT_EQ(saturating_duration(std::chrono::duration<float, std::ratio<31556952>>(1e3f)),
              ns::max());  // 1000 years in float years
}

TEST(SaturatingAdd, ClampsAtBothEnds) {
    const tp zero{};
    EXPECT_EQ(saturating_add(tp::max() - 1ns, 2ns), tp::max());
    EXPECT_EQ(saturating_add(zero + 1s, ns::max()), tp::max());
    EXPECT_EQ(saturating_add(tp::min() + 1ns, -2ns), tp::min());
    EXPECT_EQ(saturating_add(zero + 1s, ns::min()), zero + 1s + ns::min());
    EXPECT_EQ(saturating_add(zero + 1s, 1s), zero + 2s);
}

TEST(SaturatingDeadline, HugeIsNeverAndNegativeIsNow) {
    EXPECT_EQ(saturating_deadline(ns::max()), tp::max());
    EXPECT_EQ(saturating_deadline(std::chrono::hours::max()), tp::max());
    EXPECT_EQ(saturating_deadline(dsec(1e30)), tp::max());
    auto before = goro::clock::now();
    auto an_hour_ago = saturating_deadline(-1h);
    EXPECT_LE(an_hour_ago, goro::clock::now() - 1h);
    EXPECT_GE(an_hour_ago, before - 1h);
    EXPECT_LE(saturating_deadline(std::chrono::hours::min()), before);
    auto d = saturating_deadline(10s);
    EXPECT_GE(d, before + 10s);
    EXPECT_LE(d, goro::clock::now() + 10s);
}
