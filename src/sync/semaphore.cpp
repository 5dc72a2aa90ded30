// sync/semaphore.cpp — the weighted FIFO semaphore.
//
// Invariants (under mu_): 0 <= cur_ <= size_; waiters are granted strictly
// in FIFO order — release grants the head while it fits and stops at the
// first that does not. A granted waiter has cur_ already counted for it.
// The context-aware acquire races the grant against ctx.done() with a
// select over a per-waiter channel; whoever settles first under mu_ wins, so
// permits are never lost: a waiter that gives up is dequeued, and one that
// was granted keeps the permits. Lock order: mu_ -> the waiter's channel.
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

namespace {}  // namespace

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
        std::int64_t give_back = 0;
        {
            std::lock_guard lk(mu_);
            if (w.queued)
                q_.remove(&w);
            else if (w.granted)
                give_back = n;
        }
        if (give_back) release(give_back);
        detail::throw_unwind();
    }
}

std::error_code semaphore::acquire(const context& ctx, std::int64_t n) {
    if (n < 0) throw misuse_error("goro::semaphore::acquire: negative count");
    {
        std::lock_guard lk(mu_);
        if (size_ - cur_ >= n && q_.empty()) {
            cur_ += n;
            return {};
        }
    }
    if (auto e = ctx.err()) return e;
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
    struct dequeue_on_unwind {
        semaphore* s;
        waiter* w;
        bool armed = true;
        ~dequeue_on_unwind() {
            if (!armed) return;
            std::int64_t give_back = 0;
            {
                std::lock_guard lk(s->mu_);
                if (w->queued)
                    s->q_.remove(w);
                else if (w->granted)
                    give_back = w->n;
            }
            if (give_back) s->release(give_back);
        }
    } guard{this, &w};
    std::size_t i = goro::select(recv_case(w.ready), recv_case(ctx.done()));
    guard.armed = false;
    if (i == 0) return {};
    std::lock_guard lk(mu_);
    if (w.granted) return {};  // granted just as ctx finished: keep it
    q_.remove(&w);
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
        // Grant in FIFO order while the head fits.
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
    }
    while (wake) {
        waiter* next = wake->next;
        detail::ready(wake->p);
        wake = next;
    }
}

}  // namespace goro
