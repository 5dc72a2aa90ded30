// sync/semaphore.cpp — the weighted FIFO semaphore.
//
// Invariants (under mu_): 0 <= cur_ <= size_; waiters are granted strictly
// in FIFO order — grant_locked() grants the head while it fits and stops at
// the first that does not. A granted waiter has cur_ already counted for it.
// Whenever the head changes other than by a grant (a waiter gives up or is
// unwound), grant_locked() runs again: the waiters behind a large request
// that left may fit now (Go's "isFront && size > cur" rule).
// The context-aware acquire races the grant against ctx.done() with a
// select over a per-waiter channel; whoever settles first under mu_ wins, so
// permits are never lost: a waiter that gives up is dequeued, and one that
// was granted keeps the permits. Lock order: mu_ -> the waiter's channel;
// parkers are readied after mu_ is released.
#include <string>

#include "goro/context.hpp"
#include "goro/errors.hpp"
#include "goro/select.hpp"
#include "goro/semaphore.hpp"
#include "sync/sync_queue.hpp"

namespace goro {

struct semaphore::waiter {
    std::int64_t n = 0;
    detail::parker* p = nullptr;  // a parked acquire, or
    chan<unit> ready;             // the channel of a context-aware acquire
    bool granted = false;
    waiter* next = nullptr;
    waiter* prev = nullptr;
    bool queued = false;
};

semaphore::semaphore(std::int64_t size) : size_(size) {
    if (size < 0) throw misuse_error("goro::semaphore: negative size");
}

void semaphore::check(std::int64_t n, const char* who) const {
    if (n < 0) throw misuse_error(std::string(who) + ": negative count");
    if (n > size_) throw misuse_error(std::string(who) + ": count exceeds the semaphore's size");
}

// Grants queued waiters in FIFO order while the head fits. Blocking
// acquires that won their claim are chained on `wake` for the caller to
// ready after unlocking; context-aware ones are signalled on their channel.
semaphore::waiter* semaphore::grant_locked() {
    waiter* wake = nullptr;
    while (waiter* w = q_.head) {
        if (size_ - cur_ < w->n) break;
        q_.remove(w);
        if (w->p && !detail::claim(w->p)) continue;  // being unwound: not ours
        cur_ += w->n;
        w->granted = true;
        if (w->p) {
            w->next = wake;
            wake = w;
        } else {
            w->ready.try_send(unit{});  // cap 1, never full: wakes its select
        }
    }
    return wake;
}

void semaphore::ready_all(waiter* wake) noexcept {
    while (wake) {
        waiter* next = wake->next;
        detail::ready(wake->p);
        wake = next;
    }
}

// A waiter leaves without being granted (gave up or unwound): dequeue it,
// or give back what it was granted meanwhile, and let the ones behind it in.
void semaphore::abandon(waiter& w) {
    waiter* wake;
    {
        std::lock_guard lk(mu_);
        if (w.queued)
            q_.remove(&w);
        else if (w.granted)
            cur_ -= w.n;
        wake = grant_locked();
    }
    ready_all(wake);
}

void semaphore::acquire(std::int64_t n) {
    check(n, "goro::semaphore::acquire");
    mu_.lock();
    if (size_ - cur_ >= n && q_.empty()) {
        cur_ += n;
        mu_.unlock();
        return;
    }
    waiter w;
    w.n = n;
    w.p = detail::current_parker();
    q_.push_back(&w);
    detail::begin_park(w.p);
    auto unlock = [](void* m) { static_cast<detail::spin_mutex*>(m)->unlock(); };
    if (detail::park(detail::wait_reason::semaphore, unlock, &mu_) == detail::wake::unwind) {
        abandon(w);
        detail::throw_unwind();
    }
}

std::error_code semaphore::acquire(const context& ctx, std::int64_t n) {
    if (n < 0) throw misuse_error("goro::semaphore::acquire: negative count");
    // A context already done fails even if permits are free (as x/sync does
    // since 2024: the cancellation happened before the call).
    if (auto e = ctx.err()) return e;
    {
        std::lock_guard lk(mu_);
        if (size_ - cur_ >= n && q_.empty()) {
            cur_ += n;
            return {};
        }
    }
    if (n > size_) {
        // Can never be satisfied: wait for ctx, as Go does.
        ctx.done().recv();
        return ctx.err();
    }
    waiter w;
    w.n = n;
    w.ready = make_chan<unit>(1);
    {
        std::lock_guard lk(mu_);
        if (size_ - cur_ >= n && q_.empty()) {
            cur_ += n;
            return {};
        }
        q_.push_back(&w);
    }
    struct abandon_on_unwind {
        semaphore* s;
        waiter* w;
        bool armed = true;
        ~abandon_on_unwind() {
            if (armed) s->abandon(*w);
        }
    } guard{this, &w};
    std::size_t i = goro::select(recv_case(w.ready), recv_case(ctx.done()));
    guard.armed = false;
    if (i == 0) return {};
    waiter* wake;
    {
        std::lock_guard lk(mu_);
        if (w.granted) return {};  // granted just as ctx finished: keep it
        q_.remove(&w);
        wake = grant_locked();  // it may have been the head blocking others
    }
    ready_all(wake);
    return ctx.err();
}

bool semaphore::try_acquire(std::int64_t n) {
    if (n < 0) throw misuse_error("goro::semaphore::try_acquire: negative count");
    std::lock_guard lk(mu_);
    if (size_ - cur_ >= n && q_.empty()) {
        cur_ += n;
        return true;
    }
    return false;
}

void semaphore::release(std::int64_t n) {
    if (n < 0) throw misuse_error("goro::semaphore::release: negative count");
    waiter* wake = nullptr;
    {
        std::lock_guard lk(mu_);
        if (n > cur_)
            throw negative_counter_error("goro::semaphore::release: released more than held");
        cur_ -= n;
        wake = grant_locked();
    }
    ready_all(wake);
}

}  // namespace goro
