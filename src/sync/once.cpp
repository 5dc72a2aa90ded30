// sync/once.cpp — goro::once as one state word: idle, running, running with
// parked callers, done.
//
// Invariants: only the caller that moved idle -> running runs fn; the state
// becomes running_waited (and q_ changes) only under the once's wait lock
// (wait_lock.hpp). finish() publishes done (or idle, when fn threw) with one
// exchange: if it reports no parked caller, that was the last touch of the
// once; otherwise the parked callers keep it alive until they are woken, so
// finish takes the wait lock and wakes them (to return, or, after a throw,
// to try again). runner_ is the parker running fn, set when it takes
// idle -> running and cleared before finish() publishes: a call that finds
// itself the runner is fn calling call() on its own once, which would wait
// for itself, and throws misuse_error instead. Lock order: the wait lock is
// a leaf.
#include "goro/once.hpp"

#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "sanitizers/hooks.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

namespace {}  // namespace

bool once::begin() {
    // After a finished call (done: call() returns at once), or an aborted
    // one (TSan: sanitizers/hooks.hpp; call()'s inline check is seen).
    detail::san::acquire_on_exit announce{&state_};
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    for (;;) {
        std::uint32_t s = state_.load(std::memory_order_acquire);
        if (s == done_state) return false;
        if (s == idle) {
            if (state_.compare_exchange_strong(s, running, std::memory_order_acquire)) {
                runner_.store(detail::current_parker(), std::memory_order_relaxed);
                return true;
            }
            continue;
        }
        if (runner_.load(std::memory_order_relaxed) == detail::current_parker())
            throw misuse_error(
                "goro::once::call: fn called call() on its own once (it would wait for itself)");
        wl.lock();
        s = state_.load(std::memory_order_acquire);
        if (s == running)
            if (!state_.compare_exchange_strong(s, running_waited, std::memory_order_acquire))
                s = state_.load(std::memory_order_acquire);
        if (s != running && s != running_waited) {
            wl.unlock();
            continue;  // done or idle since: look again
        }
        detail::waiter w;
        w.p = detail::current_parker();
        q_.push_back(&w);
        detail::begin_park(w.p);
        if (detail::park_releasing(wl, detail::wait_reason::once,
                                   detail::park_mode::waits_through_shutdown,
                                   this) == detail::wake::unwind) {
            {
                detail::lock_scope lk(wl);
                q_.remove(&w);
            }
            detail::throw_unwind();
        }
    }
}

void once::finish(bool ok) noexcept {
    detail::san::tsan_release(&state_);  // the call, to everyone who sees it done (TSan)
    runner_.store(nullptr, std::memory_order_relaxed);
    if (state_.exchange(ok ? done_state : idle, std::memory_order_acq_rel) != running_waited)
        return;  // nobody parked: the exchange was the last touch
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        while (detail::waiter* w = detail::pop_claimed(q_)) woken.push(w);
    }
    woken.ready_all();
}

}  // namespace goro
