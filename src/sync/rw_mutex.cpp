// sync/rw_mutex.cpp — goro::rw_mutex.
//
// All state — readers_ holding, writer_ holding, writers_waiting_, and two
// FIFOs of parked waiters — is guarded by the rw_mutex's wait lock
// (wait_lock.hpp), which lives outside the object: an unlock's last write to
// the rw_mutex happens under that lock, and releasing it touches only the
// lock table, so the rw_mutex may be freed as soon as anyone returns.
// Hand-off discipline: whoever releases grants the lock to the waiters it
// wakes (success = true, counts updated under the lock), so a woken waiter
// never has to compete again.
// Policy: a waiting writer blocks new readers (no writer starvation); when a
// writer unlocks, every queued reader gets in first, then the next writer
// (no reader starvation). Lock order: the wait lock is a leaf.
#include "goro/rw_mutex.hpp"
#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "sanitizers/hooks.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

// Parks w (queued) with wl held; returns with wl released. Unwound at
// shutdown, w leaves its queue, and whoever it held back is let in.
void rw_mutex::park_queued(detail::spin_mutex& wl, detail::waiter& w) GORO_RELEASE(wl) {
    detail::begin_park(w.p);
    if (detail::park_releasing(wl, detail::wait_reason::rw_mutex,
                               detail::park_mode::waits_through_shutdown,
                               this) == detail::wake::unwind) {
        detail::wake_list woken;
        {
            detail::lock_scope lk(wl);
            if (w.queued) {
                (w.writer ? writeq_ : readq_).remove(&w);
                if (w.writer) --writers_waiting_;
                admit_locked(woken);
            }
        }
        woken.ready_all();
        detail::throw_unwind();
    }
}

// Grants the lock to whoever may have it now, with the unlock policy: while
// no writer holds it, the queued readers if no writer waits, else the next
// writer once no reader holds it. Requires the wait lock.
void rw_mutex::admit_locked(detail::wake_list& woken) {
    if (writer_) return;
    if (writers_waiting_ == 0) {
        while (detail::waiter* r = detail::pop_claimed(readq_)) {
            ++readers_;
            r->success = true;
            woken.push(r);
        }
    } else if (readers_ == 0) {
        if (detail::waiter* w = detail::pop_claimed(writeq_)) {
            --writers_waiting_;
            writer_ = true;
            w->success = true;
            woken.push(w);
        }
    }
}

// Every lock (shared or not) acquires *this and every unlock releases it,
// for TSan over an uninstrumented goro (sanitizers/hooks.hpp); readers are
// thereby ordered after one another too, which only hides races.
void rw_mutex::lock_shared() {
    detail::san::acquire_on_exit announce{this};
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    wl.lock();
    if (!writer_ && writers_waiting_ == 0) {
        ++readers_;
        wl.unlock();
        return;
    }
    detail::waiter w;
    w.p = detail::current_parker();
    readq_.push_back(&w);
    park_queued(wl, w);
}

bool rw_mutex::try_lock_shared() {
    detail::san::acquire_on_exit announce{this};
    detail::lock_scope lk(detail::wait_lock_for(this));
    if (writer_ || writers_waiting_ > 0) return false;
    ++readers_;
    return true;
}

void rw_mutex::unlock_shared() {
    detail::san::tsan_release(this);
    detail::waiter* w = nullptr;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (readers_ == 0)
            throw misuse_error("goro::rw_mutex::unlock_shared: unlock of unlocked rw_mutex");
        if (--readers_ == 0 && (w = detail::pop_claimed(writeq_))) {
            --writers_waiting_;
            writer_ = true;
            w->success = true;
        }
    }
    if (w) detail::ready(w->p);
}

void rw_mutex::lock() {
    detail::san::acquire_on_exit announce{this};
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    wl.lock();
    if (!writer_ && readers_ == 0) {
        writer_ = true;
        wl.unlock();
        return;
    }
    detail::waiter w;
    w.p = detail::current_parker();
    w.writer = true;
    ++writers_waiting_;
    writeq_.push_back(&w);
    park_queued(wl, w);
}

bool rw_mutex::try_lock() {
    detail::san::acquire_on_exit announce{this};
    detail::lock_scope lk(detail::wait_lock_for(this));
    if (writer_ || readers_ > 0) return false;
    writer_ = true;
    return true;
}

void rw_mutex::unlock() {
    detail::san::tsan_release(this);
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (!writer_) throw misuse_error("goro::rw_mutex::unlock: unlock of unlocked rw_mutex");
        writer_ = false;
        // Queued readers first, all of them; else the next writer.
        while (detail::waiter* r = detail::pop_claimed(readq_)) {
            ++readers_;
            r->success = true;
            woken.push(r);
        }
        if (woken.empty()) {
            if (detail::waiter* w = detail::pop_claimed(writeq_)) {
                --writers_waiting_;
                writer_ = true;
                w->success = true;
                woken.push(w);
            }
        }
    }
    woken.ready_all();
}

}  // namespace goro
