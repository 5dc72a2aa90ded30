// sync/cond.cpp — goro::cond, after Go's notifyList: each wait takes a
// ticket before unlocking the user's mutex; signal notifies the oldest
// unnotified ticket and broadcast all of them. A waiter whose ticket was
// notified before it got to park does not park at all, so no signal is
// lost between the unlock and the park.
// Invariants (under mu_): notify_ticket_ <= wait_ticket_; every queued
// waiter's ticket is >= notify_ticket_. Lock order: the user's mutex is
// never taken under mu_.
#include "goro/cond.hpp"
#include "goro/errors.hpp"
#include "sync/sync_queue.hpp"

namespace goro {

void cond::wait(std::unique_lock<mutex>& lk) {
    if (!lk.owns_lock() || lk.mutex() != m_)
        throw misuse_error("goro::cond::wait: the lock must hold this cond's mutex");
    detail::sync_waiter w;
    w.p = detail::current_parker();
    mu_.lock();
    w.ticket = wait_ticket_++;
    mu_.unlock();
    lk.unlock();
    mu_.lock();
    if (w.ticket < notify_ticket_) {
        mu_.unlock();  // notified before we could park
    } else {
        q_.push_back(&w);
        detail::begin_park(w.p);
        detail::park_waiter(mu_, q_, w, detail::wait_reason::cond);
    }
    lk.lock();
}

void cond::signal() {
    detail::sync_waiter* w = nullptr;
    {
        std::lock_guard lk(mu_);
        if (notify_ticket_ == wait_ticket_) return;  // nobody waiting
        std::uint64_t t = notify_ticket_++;
        for (detail::sync_waiter* it = q_.head; it; it = it->next)
            if (it->ticket == t) {
                q_.remove(it);
                if (detail::claim(it->p)) w = it;
                break;
            }
        // Not queued yet: that waiter sees its ticket notified and skips parking.
    }
    if (w) detail::ready(w->p);
}

void cond::broadcast() {
    detail::sync_waiter* wake = nullptr;
    {
        std::lock_guard lk(mu_);
        notify_ticket_ = wait_ticket_;
        while (detail::sync_waiter* w = detail::pop_claimed(q_)) {
            w->next = wake;
            wake = w;
        }
    }
    while (wake) {
        detail::sync_waiter* next = wake->next;
        detail::ready(wake->p);
        wake = next;
    }
}

}  // namespace goro
