// time/now.cpp — the runtime's clock: the steady clock, or a bubble's
// virtual clock (goro::testing::bubble). Outside a bubble, reading it costs
// one relaxed load and a predictable branch over clock::now(). The virtual
// clock is written only by the bubble's single worker (and set when the
// bubble starts, before its first goroutine), read by anyone.
#include <chrono>

#include "scheduler/scheduler.hpp"

namespace goro::detail {

std::atomic<bool> virtual_clock_on{false};
std::atomic<std::int64_t> virtual_clock_ns{0};

std::int64_t real_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
        .count();
}

std::int64_t now_ns() noexcept {
    if (virtual_clock_on.load(std::memory_order_relaxed)) [[unlikely]]
        return virtual_clock_ns.load(std::memory_order_acquire);
    return real_now_ns();
}

}  // namespace goro::detail

namespace goro {

clock::time_point now() noexcept {
    return clock::time_point(std::chrono::nanoseconds(detail::now_ns()));
}

}  // namespace goro
