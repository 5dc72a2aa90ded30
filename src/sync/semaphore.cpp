// sync/semaphore.cpp — the weighted FIFO semaphore (golang.org/x/sync/semaphore).
//
// Invariants (under the semaphore's wait lock, wait_lock.hpp, which lives
// outside the object): 0 <= cur_ <= size_; waiters are granted strictly in
// FIFO order — grant_locked() grants the head while it fits and stops at the
// first that does not. A granted waiter has cur_ already counted for it.
// Whenever the head changes other than by a grant (a waiter gives up or is
// unwound), grant_locked() runs again: the waiters behind a large request
// that left may fit now (Go's "isFront && size > cur" rule).
// The context-aware acquire races the grant against ctx.done() with a
// select over a per-waiter channel (waiter.signal). As current x/sync does,
// it never returns holding permits after ctx is done: if the grant and the
// cancellation meet, the permits are given back and ctx.err() returned.
// Lock order: the wait lock -> the waiter's channel; parkers are readied
// after the wait lock is released.
#include <string>

#include "goro/context.hpp"
#include "goro/detail/waiter.hpp"
#include "goro/errors.hpp"
#include "goro/select.hpp"
#include "goro/semaphore.hpp"
#include "sanitizers/hooks.hpp"
#include "sync/wait_lock.hpp"

namespace goro {

namespace {}  // namespace

semaphore::semaphore(std::int64_t size) : size_(size) {
    if (size < 0) throw misuse_error("goro::semaphore: negative size");
}

void semaphore::check(std::int64_t n, const char* who) const {
    if (n < 0) throw misuse_error(std::string(who) + ": negative count");
    if (n > size_) throw misuse_error(std::string(who) + ": count exceeds the semaphore's size");
}

// Grants queued waiters in FIFO order while the head fits. Blocking
// acquires that win their claim go on `woken` (readied after unlocking);
// context-aware ones are signalled on their channel. A blocking waiter that
// cannot be claimed is being unwound: it stays queued (it unlinks itself).
void semaphore::grant_locked(detail::wake_list& woken) {
    for (detail::waiter* w = q_.head; w;) {
        detail::waiter* next = w->next;
        if (size_ - cur_ < w->n) break;
        if (!w->signal()) {
            if (!detail::claim(w->p)) {
                w = next;
                continue;
            }
            q_.remove(w);
            cur_ += w->n;
            w->success = true;
            woken.push(w);
        } else {
            q_.remove(w);
            cur_ += w->n;
            w->success = true;
            unit u{};
            detail::chan_send(w->signal(), &u, false);  // cap 1, never full: wakes its select
        }
        w = next;
    }
}

// A waiter leaves without keeping a grant (gave up or unwound): unlink it,
// or give back what it was granted meanwhile, and let the ones behind it in.
void semaphore::abandon(detail::waiter& w) {
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (w.queued)
            q_.remove(&w);
        else if (w.success)
            cur_ -= w.n;
        grant_locked(woken);
    }
    woken.ready_all();
}

// Acquires acquire *this and releases release it, for TSan over an
// uninstrumented goro (sanitizers/hooks.hpp).
void semaphore::acquire(std::int64_t n) {
    detail::san::acquire_on_exit announce{this};
    check(n, "goro::semaphore::acquire");
    detail::spin_mutex& wl = detail::wait_lock_for(this);
    wl.lock();
    if (size_ - cur_ >= n && q_.empty()) {
        cur_ += n;
        wl.unlock();
        return;
    }
    detail::waiter w;
    w.n = n;
    w.p = detail::current_parker();
    q_.push_back(&w);
    detail::begin_park(w.p);
    if (detail::park_releasing(wl, detail::wait_reason::semaphore,
                               detail::park_mode::waits_through_shutdown,
                               this) == detail::wake::unwind) {
        abandon(w);
        detail::throw_unwind();
    }
}

std::error_code semaphore::acquire(const context& ctx, std::int64_t n) {
    detail::san::acquire_on_exit announce{this};
    if (n < 0) throw misuse_error("goro::semaphore::acquire: negative count");
    // A context done before we hold the lock fails even if permits are free
    // (x/sync: its cancellation happened before the acquire). Checked under
    // the lock: a grant made there is concurrent with any later cancel.
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (auto e = ctx.err()) return e;
        if (size_ - cur_ >= n && q_.empty()) {
            cur_ += n;
            return {};
        }
    }
    auto done = ctx.done();
    if (n > size_) {
        // Can never be satisfied: wait for ctx, as Go does.
        done.recv();
        return ctx.err();
    }
    auto ready = make_chan<unit>(1);
    detail::waiter w;
    w.n = n;
    w.elem = ready.core();  // waiter::signal()
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (auto e = ctx.err()) return e;
        if (size_ - cur_ >= n && q_.empty()) {
            cur_ += n;
            return {};
        }
        q_.push_back(&w);
    }
    struct abandon_on_unwind {
        semaphore* s;
        detail::waiter* w;
        bool armed = true;
        ~abandon_on_unwind() {
            if (armed) s->abandon(*w);
        }
    } guard{this, &w};
    std::size_t i = goro::select(recv_case(ready), recv_case(done));
    guard.armed = false;
    if (i == 0) {
        // Granted. If ctx finished too, give the permits back (x/sync).
        if (done.try_recv().closed()) {
            release(n);
            return ctx.err();
        }
        return {};
    }
    abandon(w);  // dequeues it, or returns a grant that raced the cancellation
    return ctx.err();
}

bool semaphore::try_acquire(std::int64_t n) {
    detail::san::acquire_on_exit announce{this};
    if (n < 0) throw misuse_error("goro::semaphore::try_acquire: negative count");
    detail::lock_scope lk(detail::wait_lock_for(this));
    if (size_ - cur_ >= n && q_.empty()) {
        cur_ += n;
        return true;
    }
    return false;
}

void semaphore::release(std::int64_t n) {
    detail::san::tsan_release(this);
    if (n < 0) throw misuse_error("goro::semaphore::release: negative count");
    detail::wake_list woken;
    {
        detail::lock_scope lk(detail::wait_lock_for(this));
        if (n > cur_)
            throw negative_counter_error("goro::semaphore::release: released more than held");
        cur_ -= n;
        grant_locked(woken);
    }
    woken.ready_all();
}

}  // namespace goro
