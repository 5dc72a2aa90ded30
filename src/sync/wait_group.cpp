// sync/wait_group.cpp — wait_group on the park primitive (Go's design: the
// counter and the number of waiters in one atomic word).
//
// Invariants: the counter (state_ >> 32) is never negative and never over
// 2^31 - 1 (add() changes it by a CAS that checks the result first: a
// misused done() throws without touching it, so no other call ever sees
// it out of range); the waiter count (low 32 bits) is the number of
// waiters registered since the counter last reached zero (this round's),
// each changed under the wait lock (wait_lock.hpp) by a waiter's
// registration. A waiter registers only while the counter is positive (a
// CAS that checks it), and queues in q_ in the same hold of the lock, so
// q_ holds the waiters of ended rounds ahead of this round's.
// Wake-up: the add() that takes the counter to zero sees the waiter count
// in the same RMW. With no waiter, that RMW is its last touch of the
// wait_group (a waiter that then sees zero may destroy it at once). With
// `due` waiters it clears the count at once (a CAS from exactly {0, due}
// to {0, 0}, as Go's Add stores 0): it now owes `due` wake-ups, which no
// later zeroing counts again. It takes the wait lock — the waiters are
// still blocked, so the wait_group is alive — and wakes the first `due` in
// q_. Wake-ups are interchangeable: a zeroing done() slow to get the lock
// (descheduled) may find its own waiters woken by a later round's zeroing,
// and then wakes that round's instead; the first N in q_ are always
// waiters of ended rounds while N wake-ups are owed, so none returns early
// (a wait() of an ended round may return late, when the slow one gets on).
// The CAS fails only if the counter moved in between — a new round's add()
// concurrent with the last round's zero (Go reports it as misuse, when it
// sees it). That add() saw {0, due} in its own RMW: every waiter counted
// there is of an ended round (a waiter registers only while the counter is
// positive), so it takes the wake-ups over: it subtracts `due` from the
// count (a CAS while the counter stays positive; it includes this add()'s
// own n, which no done() can match before add() returns) and wakes the
// first `due` in q_. So the ended round's waiters are not held until the
// new round's zero (Break19WaitGroup.EndedRoundsWaiterNotHeldByNextRoundsAdd).
// If the counter reached zero first anyway (a done() that no add() had
// counted yet: misuse), that zero owes them all.
// Lock order: the wait lock is a leaf.
#include <algorithm>
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
    const char* what = n == -1 ? "goro::wait_group::done (or add(-1)): negative counter (more "
                                 "done() than add())"
                               : "goro::wait_group::add: negative counter";
    constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
    if (n < -limit) throw negative_counter_error(what);
    if (n > limit) throw misuse_error("goro::wait_group::add: counter overflow (over 2^31 - 1)");
    // A CAS that checks the result's range first: a call that would take the
    // counter out of range throws without ever changing it. (Go's Add is one
    // fetch_add, undone on a negative result; this was too, and until the
    // undo every other call saw the misuser's -1: a correct add(1) landing
    // on it made 0, a wait() then returned early, and the correct done()
    // that followed threw and left the counter at 1 for good —
    // Break24WaitGroup.MisusedDones…. The loop costs nothing measurable on
    // mpmc, where four consumers count every item on one wait_group, nor
    // on spawn: docs/performance.md, "wait_group's checked add".)
    const std::uint64_t delta = static_cast<std::uint64_t>(n) << 32;
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    std::int64_t c;
    do {
        c = counter_of(s) + n;
        if (c < 0) throw negative_counter_error(what);
        if (c > limit)
            throw misuse_error("goro::wait_group::add: counter overflow (over 2^31 - 1)");
    } while (!state_.compare_exchange_weak(s, s + delta, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
    const std::uint64_t due = s & waiter_mask;
    if (due == 0) return;  // the RMW was the last touch
    if (c == 0) {
        if (own_wake_ups(due)) wake_first(due);
    } else if (n > 0 && counter_of(s) == 0) {
        // From zero, with the last round's waiters not yet cleared (they
        // are still parked, so the wait_group is alive).
        if (const std::uint64_t mine = take_over_wake_ups(due)) wake_first(mine);
    }
}

// Wakes the first `due` waiters in q_, whose wake-ups this call owes: they
// are of ended rounds (the file's comment).
void wait_group::wake_first(std::uint64_t due) noexcept {
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        std::uint64_t n = due;
        for (detail::waiter* w = q_.head; w && n > 0; --n) {
            detail::waiter* next = w->next;
            // One that cannot be claimed is being unwound: it unlinks itself.
            if (detail::take_claimed(q_, w)) woken.push(w);
            w = next;
        }
    }
    woken.ready_all();
}

// After a new round's add() took the counter from zero with `due` waiters
// still counted: the zeroing call's CAS will fail, so this one clears them
// (as many as are still counted: a waiter unwound at shutdown uncounts
// itself). How many wake-ups it now owes; 0 if the counter reached zero
// meanwhile (that zero owes them).
std::uint64_t wait_group::take_over_wake_ups(std::uint64_t due) noexcept {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint64_t mine = std::min(s & waiter_mask, due);
        if (counter_of(s) <= 0 || mine == 0) return 0;
        if (state_.compare_exchange_weak(s, s - mine, std::memory_order_acq_rel,
                                         std::memory_order_relaxed))
            return mine;
    }
}

// After an add() took the counter to zero with `due` waiters registered:
// clears their count, so that this call owes them their wake-ups. False if
// another call owes them now: the counter left zero in between (a new
// round's add(), which took them over) and maybe came back (that zero
// cleared the count, or will).
bool wait_group::own_wake_ups(std::uint64_t due) noexcept {
    std::uint64_t expected = due;
    return state_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                          std::memory_order_relaxed);
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
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    // Registers only while the counter is positive (it is never negative:
    // add() checks before it changes it).
    if (counter_of(state_.load(std::memory_order_acquire)) == 0) {
        detail::san::tsan_acquire(&state_);  // every done() (TSan: sanitizers/hooks.hpp)
        return;
    }
    wl.lock();
    std::uint64_t s = state_.load(std::memory_order_acquire);
    bool registered = false;
    while (counter_of(s) > 0 && !registered)
        registered = state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                                  std::memory_order_acquire);
    if (!registered) {
        wl.unlock();
        detail::san::tsan_acquire(&state_);
        return;
    }
    // The lock still held.
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
                // Uncounted, unless a zero cleared the count (then the
                // zeroing call owes this one a wake-up it cannot give; at
                // shutdown every waiter is unwound, so none is missed).
                std::uint64_t s = state_.load(std::memory_order_relaxed);
                while ((s & waiter_mask) != 0 &&
                       !state_.compare_exchange_weak(s, s - 1, std::memory_order_relaxed)) {
                }
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
