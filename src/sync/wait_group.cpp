// sync/wait_group.cpp — wait_group on the park primitive.
//
// Invariants: counter_ >= 0 outside add(); a waiter is on the list only while
// its owner is in wait(); whoever takes the counter to zero wakes every
// waiter on the list. Lock order: mu_ is a leaf (ready() after unlocking).
// The zero check in wait() happens under mu_, and add() locks mu_ after
// taking the counter to zero, so a waiter never misses the wake-up.
#include <string>

#include "goro/detail/park.hpp"
#include "goro/errors.hpp"
#include "goro/wait_group.hpp"

namespace goro {

struct wait_group::waiter {
    detail::parker* p;
    waiter* next;
    waiter* prev;
    bool queued;
};

void wait_group::add(std::int64_t n) {
    std::int64_t v = counter_.fetch_add(n, std::memory_order_acq_rel) + n;
    if (v < 0) {
        counter_.fetch_sub(n, std::memory_order_acq_rel);
        throw negative_counter_error(
            n == -1 ? "goro::wait_group::done (or add(-1)): negative counter (more done() than "
                      "add())"
                    : "goro::wait_group::add: negative counter");
    }
    if (v != 0 || n == 0) return;
    waiter* wake_list = nullptr;
    {
        std::lock_guard lk(mu_);
        if (counter_.load(std::memory_order_acquire) != 0) return;  // re-added meanwhile
        // Claim under the lock: a waiter we claim stays put until we ready it;
        // one claimed by someone else (shutdown) is theirs.
        for (waiter* w = head_; w;) {
            waiter* next = w->next;
            w->queued = false;
            if (detail::claim(w->p)) {
                w->next = wake_list;
                wake_list = w;
            }
            w = next;
        }
        head_ = nullptr;
    }
    while (wake_list) {
        waiter* next = wake_list->next;  // read before ready(): the waiter may vanish
        detail::ready(wake_list->p);
        wake_list = next;
    }
}

void wait_group::wait() {
    if (counter_.load(std::memory_order_acquire) == 0) return;
    mu_.lock();
    if (counter_.load(std::memory_order_acquire) == 0) {
        mu_.unlock();
        return;
    }
    waiter w{detail::current_parker(), head_, nullptr, true};
    if (head_) head_->prev = &w;
    head_ = &w;
    detail::begin_park(w.p);
    auto unlock = [](void* m) { static_cast<detail::spin_mutex*>(m)->unlock(); };
    if (detail::park(detail::wait_reason::wait_group, unlock, &mu_) == detail::wake::unwind) {
        {
            std::lock_guard lk(mu_);
            if (w.queued) {
                if (w.prev)
                    w.prev->next = w.next;
                else
                    head_ = w.next;
                if (w.next) w.next->prev = w.prev;
            }
        }
        detail::throw_unwind();
    }
}

}  // namespace goro
