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

// Plain thread-locals (no destructor: locks are still taken while the
// process exits). Channel locks are counted, not listed: a select may hold
// thousands, always taken in increasing address order, so the highest
// address held is all the order check needs.
constexpr int max_other = 16;
thread_local held_lock others[max_other];
thread_local int nothers = 0;
thread_local long nchans = 0;
thread_local const void* highest_chan = nullptr;

const char* name(lock_rank r) noexcept {
    switch (r) {
        case lock_rank::lifecycle:
            return "lifecycle";
        case lock_rank::procs:
            return "procs";
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
        case lock_rank::global_queue:
            return "global_queue";
        case lock_rank::idle:
            return "idle";
        case lock_rank::timers:
            return "timers";
        case lock_rank::stack_pool:
            return "stack_pool";
        case lock_rank::blocking_call:
            return "blocking_call";
        case lock_rank::blocking_pool:
            return "blocking_pool";
        case lock_rank::pool:
            return "pool";
        case lock_rank::signals:
            return "signals";
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
    for (int i = 0; i < nothers; ++i)
        if (others[i].rank >= r) order_violation(r, addr, others[i]);
    if (nchans > 0 && (lock_rank::chan > r || (r == lock_rank::chan && highest_chan >= addr)))
        order_violation(r, addr, held_lock{lock_rank::chan, highest_chan});
    if (r == lock_rank::chan) {
        ++nchans;
        highest_chan = addr;
        return;
    }
    if (nothers == max_other)
        assert_failed("nothers < max_other", "too many internal locks held", __FILE__, __LINE__);
    others[nothers++] = {r, addr};
}

void rank_released(const void* addr) noexcept {
    for (int i = nothers; i-- > 0;)
        if (others[i].addr == addr) {
            others[i] = others[--nothers];
            return;
        }
    // A channel lock.
    if (nchans <= 0)
        assert_failed("lock recorded", "releasing an internal lock this thread does not hold",
                      __FILE__, __LINE__);
    if (--nchans == 0) highest_chan = nullptr;
}

}  // namespace goro::detail
