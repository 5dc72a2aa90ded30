// sync/wait_group.cpp — wait_group on the park primitive (Go's design: the
// counter and the number of waiters in one atomic word).
//
// Invariants: the counter (state_ >> 32) is >= 0 outside add(); the waiter
// count (low 32 bits) equals the number of waiters in q_, both changed under
// the wait lock (wait_lock.hpp). A waiter registers only while the counter is
// non-zero (a CAS that checks it).
// Wake-up: the add() that takes the counter to zero sees the waiter count in
// the same RMW. With no waiter, that RMW is its last touch of the wait_group
// (a waiter that then sees zero may destroy it at once). With waiters, it
// takes the wait lock — the waiters are still blocked, so the wait_group is
// alive — unlinks the waiters it can claim among the ones its RMW counted
// (the first that many in the queue: a waiter of a new round, added since,
// stays), subtracts them from the count (its last write), releases the lock
// and readies them.
// Lock order: the wait lock is a leaf.
#include <exception>
#include <limits>

#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "goro/wait_group.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

namespace {

constexpr std::uint64_t waiter_mask = 0xffff'ffffu;

std::int64_t counter_of(std::uint64_t s) noexcept {
    return static_cast<std::int32_t>(s >> 32);
}

}  // namespace

void wait_group::add(std::int64_t n) {
    detail::san::tsan_release(&state_);  // to wait() (TSan: sanitizers/hooks.hpp)
    // One fetch_add, as Go's Add: a CAS loop retried under contention (every
    // item of a 4x4 pipeline counted by one wait_group) costs more. A result
    // out of range is undone and reported; until the undo, a concurrent
    // add() may see the wrong counter — only when the program misuses it.
    const char* what = n == -1 ? "goro::wait_group::done (or add(-1)): negative counter (more "
                                 "done() than add())"
                               : "goro::wait_group::add: negative counter";
    constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
    if (n < -limit) throw negative_counter_error(what);
    if (n > limit) throw misuse_error("goro::wait_group::add: counter overflow (over 2^31 - 1)");
    const std::uint64_t delta = static_cast<std::uint64_t>(n) << 32;
    const std::uint64_t s = state_.fetch_add(delta, std::memory_order_acq_rel);
    const std::int64_t c = counter_of(s) + n;
    if (c < 0 || c > limit) {
        state_.fetch_sub(delta, std::memory_order_relaxed);
        if (c < 0) throw negative_counter_error(what);
        throw misuse_error("goro::wait_group::add: counter overflow (over 2^31 - 1)");
    }
    if (c != 0 || (s & waiter_mask) == 0) return;  // the RMW was the last touch
    // The waiters this RMW saw are the first `due` in q_ (each registered
    // and queued in one hold of the wait lock). Any after them came in a new
    // round (an add() since, and a wait()): they wait for that round's zero.
    std::uint64_t due = s & waiter_mask;
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        std::uint64_t claimed = 0;
        for (detail::waiter* w = q_.head; w && due > 0; --due) {
            detail::waiter* next = w->next;
            // One that cannot be claimed is being unwound; it unlinks and
            // uncounts itself.
            if (detail::take_claimed(q_, w)) {
                woken.push(w);
                ++claimed;
            }
            w = next;
        }
        if (claimed) state_.fetch_sub(claimed, std::memory_order_release);
    }
    woken.ready_all();
}

wait_group::~wait_group() {
    if (counter_of(state_.load(std::memory_order_acquire)) == 0) {
        detail::san::tsan_acquire(&state_);  // every done(), before the memory goes (TSan)
        return;
    }
    // A throw between go() and wait(): the goroutines go() started will call
    // done() on this. (Not in a normal scope exit, nor when only add()
    // counted: there a non-zero counter may be an add() nobody will balance
    // — wg.add(n) up front, then a throw before the n goroutines started —
    // and waiting would hang the caller.)
    if (std::uncaught_exceptions() == 0 || !spawned_.load(std::memory_order_relaxed) ||
        !detail::current_scheduler())
        return;
    try {
        wait();  // parks as a destructor during unwinding: shutdown does not unwind it
    } catch (...) {
        // Unwound by a shutdown that found nothing left that could call
        // done(): nothing will touch this any more.
    }
}

void wait_group::wait() {
    if (counter_of(state_.load(std::memory_order_acquire)) == 0) {
        detail::san::tsan_acquire(&state_);  // every done() (TSan: sanitizers/hooks.hpp)
        return;
    }
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    wl.lock();
    std::uint64_t s = state_.load(std::memory_order_acquire);
    do {
        if (counter_of(s) == 0) {
            wl.unlock();
            detail::san::tsan_acquire(&state_);
            return;
        }
    } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                           std::memory_order_acquire));
    detail::waiter w;
    w.p = detail::current_parker();
    q_.push_back(&w);
    detail::begin_park(w.p);
    if (detail::park_releasing(wl, detail::wait_reason::wait_group,
                               detail::park_mode::waits_through_shutdown,
                               this) == detail::wake::unwind) {
        // Shutdown found nothing left that could call done(): unwind.
        {
            detail::lock_scope lk(wl);
            if (w.queued) {
                q_.remove(&w);
                state_.fetch_sub(1, std::memory_order_relaxed);
            }
        }
        detail::throw_unwind();
    }
    // The counter reached zero. At shutdown this returns normally too (it
    // may be in a destructor, entered by a normal scope exit): the goroutine
    // unwinds at its next blocking call.
    detail::san::tsan_acquire(&state_);
}

}  // namespace goro
