// sync/cond.cpp — goro::cond, after Go's notifyList: each wait takes a
// ticket before unlocking the user's mutex; signal notifies the oldest
// unnotified ticket and broadcast all of them. A waiter whose ticket was
// notified before it got to park does not park at all, so no signal is
// lost between the unlock and the park.
// Invariants (under the cond's wait lock, wait_lock.hpp, which lives outside
// the cond): notify_ticket_ <= wait_ticket_; every queued waiter's ticket is
// >= notify_ticket_. Lock order: the user's mutex is never taken under the
// wait lock.
#include "goro/cond.hpp"

#include <algorithm>

#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "sanitizers/hooks.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

namespace {}  // namespace

void cond::wait(std::unique_lock<mutex>& lk) {
    if (!lk.owns_lock() || lk.mutex() != m_)
        throw misuse_error("goro::cond::wait: the lock must hold this cond's mutex");
    detail::san::acquire_on_exit announce{this};
    // The tickets (dead_tickets_ grows and shrinks under the wait lock):
    // goro's bookkeeping, ignored by TSan.
    detail::san::ignore_scope bookkeeping;
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    detail::waiter w;
    w.p = detail::current_parker();
    wl.lock();
    w.ticket = wait_ticket_++;
    wl.unlock();
    // lk's unlock and lock run their inline fast paths here, inside goro:
    // announce them (TSan; a mutex's address is its state word's, mutex.cpp).
    detail::san::tsan_release(lk.mutex());
    lk.unlock();
    wl.lock();
    if (w.ticket < notify_ticket_) {
        wl.unlock();  // notified before we could park
    } else {
        q_.push_back(&w);
        detail::begin_park(w.p);
        if (detail::park_releasing(wl, detail::wait_reason::cond, detail::park_mode::unwinds,
                                   this) == detail::wake::unwind) {
            {
                detail::lock_scope g(wl);
                q_.remove(&w);
                // Not notified yet: a later signal must not be spent on it.
                if (w.ticket >= notify_ticket_) dead_tickets_.push_back(w.ticket);
            }
            detail::throw_unwind();
        }
    }
    lk.lock();
    // Holding it again: as lock_slow does, for an unlock whose release TSan
    // may still be making (sanitizers/hooks.hpp, tsan_acquire_inline_release).
    detail::san::tsan_acquire_inline_release(lk.mutex());
}

// signal and broadcast release *this, wait acquires it when it returns, for
// TSan over an uninstrumented goro (sanitizers/hooks.hpp; the mutex orders
// the rest).
void cond::signal() {
    detail::san::tsan_release(this);
    detail::san::ignore_scope bookkeeping;
    detail::waiter* w = nullptr;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        while (!w && notify_ticket_ < wait_ticket_) {
            const std::uint64_t t = notify_ticket_++;
            if (auto d = std::find(dead_tickets_.begin(), dead_tickets_.end(), t);
                d != dead_tickets_.end()) {
                dead_tickets_.erase(d);  // its waiter was unwound: the next one
                continue;
            }
            detail::waiter* it = q_.head;
            while (it && it->ticket != t) it = it->next;
            // Not queued yet: that waiter sees its ticket notified and skips
            // parking.
            if (!it) break;
            // A waiter that cannot be claimed is being unwound (it unlinks
            // itself): the next one.
            if (detail::claim(it->p)) {
                q_.remove(it);
                w = it;
            }
        }
    }
    if (w) detail::ready(w->p);
}

void cond::broadcast() {
    detail::san::tsan_release(this);
    detail::san::ignore_scope bookkeeping;
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        notify_ticket_ = wait_ticket_;
        dead_tickets_.clear();
        while (detail::waiter* w = detail::pop_claimed(q_)) woken.push(w);
    }
    woken.ready_all();
}

}  // namespace goro
