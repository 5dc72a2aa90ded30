// sync/mutex.cpp — goro::mutex.
//
// state_ holds the locked bit and the number of queued waiters; q_ is the
// FIFO of parked waiters. Both the count and q_ change only under the
// mutex's wait lock (wait_lock.hpp), and together.
// Lost wake-ups are impossible: a locker registers (count + 1, by a CAS that
// requires the locked bit) under the wait lock; the unlocker's fast path is a
// CAS from exactly "locked, no waiters", so it fails once anyone registered,
// and its slow path runs under the same wait lock.
// Lifetime: the unlocker's last write to the mutex is the release of the
// locked bit (fast path: that CAS; slow path: one fetch_sub made under the
// wait lock, which lives outside the mutex). A claimed waiter is readied
// only after that, so the mutex may be freed as soon as anyone returns.
// Starvation: a waiter that was woken but lost the race requeues at the
// front; once the head waiter has waited over 1 ms, unlock hands the lock to
// it directly (the locked bit stays set, waiter.success = true).
// Lock order: the wait lock is a leaf; ready() runs after releasing it.
#include <chrono>
#include <cstddef>

#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "goro/mutex.hpp"
#include "sanitizers/hooks.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

namespace {

constexpr std::int64_t starvation_ns = 1'000'000;  // Go's 1 ms

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

void mutex::lock_slow() {
    // However it returns, it holds the lock after the unlocker's critical
    // section (TSan: sanitizers/hooks.hpp; the inline fast paths' atomics on
    // state_ are compiled into the program, and seen). Holding the lock, by
    // tsan_acquire_inline_release: the unlock this saw with goro's own
    // atomic (try_lock below, or the registering CAS) may be the inline fast
    // path's, whose release TSan may still be making — on a mutex never
    // released before, LLVM 14's TSan lost that hand-off. Unwound at
    // shutdown (not holding it), a plain acquire.
    struct announce_t {
        const void* a;
        bool held = true;
        ~announce_t() {
            if (held)
                detail::san::tsan_acquire_inline_release(a);
            else
                detail::san::tsan_acquire(a);
        }
    } announce{&state_};
    // cond.cpp announces the mutex by its own address: the same.
    static_assert(offsetof(mutex, state_) == 0);
    // Bounded spinning first: a short critical section often ends soon.
    for (int i = 0; i < 4; ++i) {
        for (int k = 0; k < 30; ++k) detail::cpu_relax();
        if (try_lock()) return;
    }
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    detail::waiter w;
    w.p = detail::current_parker();
    w.since_ns = now_ns();
    bool front = false;
    for (;;) {
        wl.lock();
        // Take the lock, or register as a waiter, in one CAS.
        std::uint32_t v = state_.load(std::memory_order_relaxed);
        for (;;) {
            const std::uint32_t next = (v & locked_bit) ? v + waiter_unit : v | locked_bit;
            if (state_.compare_exchange_weak(v, next, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                break;
        }
        if (!(v & locked_bit)) {
            wl.unlock();
            return;
        }
        if (front)
            q_.push_front(&w);
        else
            q_.push_back(&w);
        w.success = false;
        detail::begin_park(w.p);
        if (detail::park_releasing(wl, detail::wait_reason::mutex,
                                   detail::park_mode::waits_through_shutdown,
                                   this) == detail::wake::unwind) {
            wl.lock();
            if (w.queued) {
                q_.remove(&w);
                state_.fetch_sub(waiter_unit, std::memory_order_relaxed);
            }
            wl.unlock();
            announce.held = false;
            detail::throw_unwind();
        }
        if (w.success) return;  // handed over: we hold it
        // Woken to compete: try once, else wait again at the front.
        if (try_lock()) return;
        front = true;
    }
}

void mutex::unlock_slow(std::uint32_t seen) {
    if (!(seen & locked_bit)) throw misuse_error("goro::mutex::unlock: unlock of unlocked mutex");
    detail::san::tsan_release(&state_);  // to the next locker (TSan)
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    detail::waiter* w;
    {
        detail::lock_scope lk(wl);
        w = detail::pop_claimed(q_);
        const bool hand_over = w && now_ns() - w->since_ns > starvation_ns;
        if (w) w->success = hand_over;
        // One RMW: the waiter leaves the count and, unless handed over, the
        // lock is released. The last write to *this.
        const std::uint32_t dec = (w ? waiter_unit : 0) + (hand_over ? 0 : locked_bit);
        if (dec) state_.fetch_sub(dec, std::memory_order_release);
    }
    if (w) detail::ready(w->p);
}

}  // namespace goro
