// diagnostics/checks.cpp — what GORO_ASSERT and the lock-rank checker do when
// they fire. Lock ranks: each thread keeps the internal locks it holds (a
// small stack: at most one per rank, plus a select's channel locks); taking
// a lock of a lower or equal rank than one held is a lock-order violation
// (equal is allowed for channel locks in increasing address order), reported
// with both ranks. Invariant: a lock is recorded between its acquire and its
// release on the same thread (park's unlock callback runs on the thread of
// the goroutine that took the lock, right after the switch).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "diagnostics/assert.hpp"
#include "goro/detail/lock_rank.hpp"

namespace goro::detail {

void assert_failed(const char* cond, const char* msg, const char* file, int line) noexcept {
    std::fprintf(stderr, "goro: internal assertion failed: %s (%s) at %s:%d\n", msg, cond, file,
                 line);
    std::fflush(stderr);
    std::abort();
}

namespace {

struct held_lock {
    lock_rank rank;
    const void* addr;
};

constexpr int max_held = 64;
thread_local held_lock held[max_held];
thread_local int nheld = 0;

const char* name(lock_rank r) noexcept {
    switch (r) {
        case lock_rank::lifecycle:
            return "lifecycle";
        case lock_rank::timer_state:
            return "timer_state";
        case lock_rank::context:
            return "context";
        case lock_rank::deadline_link:
            return "deadline_link";
        case lock_rank::wait_lock:
            return "wait_lock";
        case lock_rank::poll_desc:
            return "poll_desc";
        case lock_rank::poll_pool:
            return "poll_pool";
        case lock_rank::chan:
            return "chan";
        case lock_rank::idle:
            return "idle";
        case lock_rank::timers:
            return "timers";
        case lock_rank::stack_pool:
            return "stack_pool";
    }
    return "?";
}

[[noreturn]] void order_violation(lock_rank taking, const void* addr, const held_lock& h) noexcept {
    std::fprintf(stderr,
                 "goro: internal lock order violation: taking %s (rank %d) at %p while holding "
                 "%s (rank %d) at %p\n",
                 name(taking), static_cast<int>(taking), addr, name(h.rank),
                 static_cast<int>(h.rank), h.addr);
    std::fflush(stderr);
    std::abort();
}

}  // namespace

void rank_acquired(lock_rank r, const void* addr) noexcept {
    for (int i = 0; i < nheld; ++i) {
        const held_lock& h = held[i];
        if (h.rank < r) continue;
        if (h.rank == r && r == lock_rank::chan && h.addr < addr) continue;
        order_violation(r, addr, h);
    }
    if (nheld == max_held)
        assert_failed("nheld < max_held", "too many internal locks held", __FILE__, __LINE__);
    held[nheld++] = {r, addr};
}

void rank_released(const void* addr) noexcept {
    for (int i = nheld; i-- > 0;)
        if (held[i].addr == addr) {
            held[i] = held[--nheld];
            return;
        }
    assert_failed("lock recorded", "releasing an internal lock this thread does not hold", __FILE__,
                  __LINE__);
}

}  // namespace goro::detail
