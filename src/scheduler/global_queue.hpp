// scheduler/global_queue.hpp — the global run queue: goroutines readied or
// spawned by plain threads, and the overflow of full local queues. A FIFO
// linked through goroutine::next under one short lock, as Go's sched.runq
// under sched.lock: it is off the hot path (goroutines readied by goroutines
// go to runnext and the local queue), and a plain lock is simple, fair, and
// clean under TSan (the lock-free queue it replaces reused blocks in a way
// TSan cannot follow).
//
// Invariants (under mu): size == the number of goroutines linked from head;
// tail is the last of them (null when empty). `pending` mirrors size for
// lock-free emptiness checks (the idle protocol's B4 reads it seq_cst).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fibers/goroutine.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro::detail {

class global_queue {
  public:
    void push(goroutine* g) noexcept {
        g->next = nullptr;
        lock_scope lk(mu_);
        if (tail_)
            tail_->next = g;
        else
            head_ = g;
        tail_ = g;
        pending_.fetch_add(1, std::memory_order_seq_cst);
    }

    // Takes up to n from the head into out; returns how many.
    std::size_t pop_batch(goroutine** out, std::size_t n) noexcept {
        if (pending_.load(std::memory_order_relaxed) <= 0) return 0;
        std::size_t got = 0;
        lock_scope lk(mu_);
        while (got < n && head_) {
            goroutine* g = head_;
            head_ = g->next;
            g->next = nullptr;
            out[got++] = g;
        }
        if (!head_) tail_ = nullptr;
        pending_.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_seq_cst);
        return got;
    }

    bool empty() const noexcept { return pending_.load(std::memory_order_seq_cst) <= 0; }

  private:
    spin_mutex mu_{lock_rank::global_queue};
    goroutine* head_ GORO_GUARDED_BY(mu_) = nullptr;
    goroutine* tail_ GORO_GUARDED_BY(mu_) = nullptr;
    alignas(64) std::atomic<std::int64_t> pending_{0};
};

}  // namespace goro::detail
