// goro/detail/lock_rank.hpp — the order in which goro's internal locks may
// be taken (Go's lockrank.go), checked in builds with GORO_ASSERTS.
//
// A thread may take a lock only if its rank is above every rank it holds;
// channel locks (several at once in select) may repeat their rank if taken
// in increasing address order. Outer to inner:
//
//   signals -> lifecycle -> procs -> timer_state, context -> wait_lock -> poll_desc -> chan
//   -> global_queue
//   -> idle
//   -> timers -> poll_pool, stack_pool, blocking_call, blocking_pool, pool
//
// (timer_state.mu drains its channel and arms its timer under it; a
// semaphore grant sends on a waiter's channel under its wait lock; a ready()
// after a channel unlock may take the idle lock; nothing is taken under the
// timer heap's or the stack pool's lock; a blocking call's lock and the
// blocking pool's are leaves, taken with nothing else held, and so is a
// goro::pool's overflow lock; the signal
// registry's is outermost: signals are delivered on channels under it.)
#pragma once

#include <cstdint>

namespace goro::detail {

enum class lock_rank : std::uint8_t {
    signals = 5,
    lifecycle = 10,
    procs = 15,
    timer_state = 20,
    context = 21,
    deadline_link = 22,
    wait_lock = 30,
    poll_desc = 35,
    chan = 40,
    global_queue = 45,
    idle = 50,
    timers = 60,
    poll_pool = 65,
    stack_pool = 70,
    blocking_call = 72,
    blocking_pool = 74,
    pool = 76,
};

// Records that the calling thread took (or released) the lock at `addr`;
// aborts with both locks named when the order above is broken. Only called
// in builds with GORO_ASSERTS (the library's own code).
void rank_acquired(lock_rank r, const void* addr) noexcept;
void rank_released(const void* addr) noexcept;

}  // namespace goro::detail
