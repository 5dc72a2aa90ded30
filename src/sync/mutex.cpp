// sync/mutex.cpp — goro::mutex.
//
// locked_ is the lock itself (0/1); nwaiters_ counts queued waiters; q_ is
// the FIFO of parked waiters (under qmu_).
// Lost wake-ups are impossible: a locker increments nwaiters_ and retries
// the CAS before parking; an unlocker releases locked_ and then reads
// nwaiters_ (both seq_cst) — one of them sees the other.
// Starvation: a waiter that was woken but lost the race requeues at the
// front; once the head waiter has waited over 1 ms, unlock hands the lock to
// it directly (locked_ stays 1, granted = true) instead of releasing it.
// nwaiters_ equals the number of queued waiters whenever qmu_ is free.
// Lock order: qmu_ is a leaf; ready() runs after releasing it.
#include <chrono>

#include "goro/errors.hpp"
#include "goro/mutex.hpp"
#include "sync/sync_queue.hpp"

namespace goro {

namespace {

constexpr std::int64_t starvation_ns = 1'000'000;  // Go's 1 ms

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// Pops waiters until one can be claimed. nwaiters_ counts queued waiters,
// so it drops for every waiter popped, claimed or not (one that could not
// be claimed is being unwound and will find itself dequeued).
detail::sync_waiter* mutex::pop_waiter_locked() noexcept {
    while (detail::sync_waiter* w = q_.head) {
        q_.remove(w);
        nwaiters_.fetch_sub(1, std::memory_order_relaxed);
        if (detail::claim(w->p)) return w;
    }
    return nullptr;
}

void mutex::lock_slow() {
    // Bounded spinning first: a short critical section often ends soon.
    for (int i = 0; i < 4; ++i) {
        for (int k = 0; k < 30; ++k) detail::cpu_relax();
        if (locked_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
    }
    detail::sync_waiter w;
    w.p = detail::current_parker();
    w.since_ns = now_ns();
    bool front = false;
    auto unlock_q = [](void* m) { static_cast<detail::spin_mutex*>(m)->unlock(); };
    for (;;) {
        qmu_.lock();
        nwaiters_.fetch_add(1, std::memory_order_seq_cst);
        std::uint32_t unlocked = 0;
        if (locked_.compare_exchange_strong(unlocked, 1, std::memory_order_seq_cst)) {
            nwaiters_.fetch_sub(1, std::memory_order_relaxed);
            qmu_.unlock();
            return;
        }
        if (front)
            q_.push_front(&w);
        else
            q_.push_back(&w);
        w.granted = false;
        detail::begin_park(w.p);
        if (detail::park(detail::wait_reason::mutex, unlock_q, &qmu_) == detail::wake::unwind) {
            qmu_.lock();
            if (w.queued) {
                q_.remove(&w);
                nwaiters_.fetch_sub(1, std::memory_order_relaxed);
            }
            qmu_.unlock();
            detail::throw_unwind();
        }
        if (w.granted) return;  // handed over: we hold it
        // Woken to compete: try once, else wait again at the front.
        if (try_lock()) return;
        front = true;
    }
}

void mutex::unlock() {
    if (locked_.load(std::memory_order_relaxed) == 0)
        throw misuse_error("goro::mutex::unlock: unlock of unlocked mutex");
    if (nwaiters_.load(std::memory_order_seq_cst) == 0) {
        locked_.store(0, std::memory_order_seq_cst);
        if (nwaiters_.load(std::memory_order_seq_cst) == 0) return;
        // A locker queued meanwhile: wake one to compete.
        detail::sync_waiter* w;
        {
            std::lock_guard lk(qmu_);
            w = pop_waiter_locked();
        }
        if (w) detail::ready(w->p);
        return;
    }
    detail::sync_waiter* w;
    {
        std::lock_guard lk(qmu_);
        w = pop_waiter_locked();
        if (w && now_ns() - w->since_ns > starvation_ns)
            w->granted = true;  // direct hand-off: locked_ stays 1
        else
            locked_.store(0, std::memory_order_seq_cst);
    }
    if (w) detail::ready(w->p);
}

}  // namespace goro
