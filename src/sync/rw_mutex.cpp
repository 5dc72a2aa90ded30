// sync/rw_mutex.cpp — goro::rw_mutex.
//
// All state is under mu_: readers_ holding, writer_ holding, writers_waiting_,
// and two FIFOs of parked waiters. Hand-off discipline: whoever releases
// grants the lock to the waiters it wakes (granted = true, counts updated
// under mu_), so a woken waiter never has to compete again.
// Policy: a waiting writer blocks new readers (no writer starvation); when a
// writer unlocks, every queued reader gets in first, then the next writer
// (no reader starvation). Lock order: mu_ is a leaf.
#include "goro/rw_mutex.hpp"
#include "goro/errors.hpp"
#include "sync/sync_queue.hpp"

namespace goro {

namespace {

// Readies a list of claimed waiters linked through next (after unlocking).
void ready_all(detail::sync_waiter* list) {
    while (list) {
        detail::sync_waiter* next = list->next;
        detail::ready(list->p);
        list = next;
    }
}

}  // namespace

void rw_mutex::lock_shared() {
    mu_.lock();
    if (!writer_ && writers_waiting_ == 0) {
        ++readers_;
        mu_.unlock();
        return;
    }
    detail::sync_waiter w;
    w.p = detail::current_parker();
    readq_.push_back(&w);
    detail::begin_park(w.p);
    detail::park_waiter(mu_, readq_, w, detail::wait_reason::rw_mutex);
}

bool rw_mutex::try_lock_shared() {
    std::lock_guard lk(mu_);
    if (writer_ || writers_waiting_ > 0) return false;
    ++readers_;
    return true;
}

void rw_mutex::unlock_shared() {
    detail::sync_waiter* w = nullptr;
    {
        std::lock_guard lk(mu_);
        if (readers_ == 0)
            throw misuse_error("goro::rw_mutex::unlock_shared: unlock of unlocked rw_mutex");
        if (--readers_ == 0) {
            while ((w = detail::pop_claimed(writeq_))) {
                --writers_waiting_;
                writer_ = true;
                w->granted = true;
                w->next = nullptr;
                break;
            }
        }
    }
    if (w) detail::ready(w->p);
}

void rw_mutex::lock() {
    mu_.lock();
    if (!writer_ && readers_ == 0) {
        writer_ = true;
        mu_.unlock();
        return;
    }
    detail::sync_waiter w;
    w.p = detail::current_parker();
    w.writer = true;
    ++writers_waiting_;
    writeq_.push_back(&w);
    detail::begin_park(w.p);
    try {
        detail::park_waiter(mu_, writeq_, w, detail::wait_reason::rw_mutex);
    } catch (...) {
        std::lock_guard lk(mu_);
        --writers_waiting_;  // unwound while queued: no longer waiting
        throw;
    }
}

bool rw_mutex::try_lock() {
    std::lock_guard lk(mu_);
    if (writer_ || readers_ > 0) return false;
    writer_ = true;
    return true;
}

void rw_mutex::unlock() {
    detail::sync_waiter* wake = nullptr;
    {
        std::lock_guard lk(mu_);
        if (!writer_) throw misuse_error("goro::rw_mutex::unlock: unlock of unlocked rw_mutex");
        writer_ = false;
        // Queued readers first, all of them; else the next writer.
        while (detail::sync_waiter* r = detail::pop_claimed(readq_)) {
            ++readers_;
            r->granted = true;
            r->next = wake;
            wake = r;
        }
        if (!wake) {
            if (detail::sync_waiter* w = detail::pop_claimed(writeq_)) {
                --writers_waiting_;
                writer_ = true;
                w->granted = true;
                w->next = nullptr;
                wake = w;
            }
        }
    }
    ready_all(wake);
}

}  // namespace goro
