// scheduler/global_queue.hpp — the global run queue: goroutines readied or
// spawned by plain threads, and the overflow of full local queues. A FIFO
// under one short lock, as Go's sched.runq under sched.lock: it is off the
// hot path (goroutines readied by goroutines go to runnext and the local
// queue), and a plain lock is simple, fair, and clean under TSan (the
// lock-free queue it replaced reused blocks in a way TSan cannot follow).
//
// The FIFO is a list of blocks of goroutine pointers, not a list linked
// through the goroutines: popping a batch of 32 then reads one or two
// contiguous blocks instead of 32 goroutine records, each at the top of its
// own stack a page or more from the next — skynet spent 24-28% of its time
// in that chain of dependent cache and TLB misses (docs/performance.md), and
// a push touched the previous tail's record as well.
//
// Invariants (under mu): head_ is the oldest block, tail_ the newest (both
// null before the first push); the goroutines are
// head_->slots[head_pos_ .. ] through tail_->slots[ .. tail_pos_), in order;
// size_ counts them. A block emptied by pop is kept as spare_ (one) or
// freed outside the lock. `pending` mirrors size_ for lock-free emptiness
// checks (the idle protocol's B4 reads it seq_cst). Memory is allocated and
// freed outside the lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "diagnostics/assert.hpp"
#include "fibers/goroutine.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro::detail {

class global_queue {
  public:
    global_queue() = default;
    global_queue(const global_queue&) = delete;
    global_queue& operator=(const global_queue&) = delete;
    ~global_queue() {
        for (block* b = head_; b;) delete std::exchange(b, b->next);
        delete spare_;
    }

    void push(goroutine* g) noexcept { push_batch(&g, 1); }

    // Appends gs[0..n) in order, under one lock; n <= block_slots.
    void push_batch(goroutine* const* gs, std::size_t n) noexcept {
        GORO_ASSERT(n <= block_slots, "global_queue: a batch larger than a block");
        block* fresh = nullptr;
        for (;;) {
            {
                lock_scope lk(mu_);
                if (room_for(n, fresh)) {
                    for (std::size_t i = 0; i < n; ++i) append(gs[i], fresh);
                    size_ += n;
                    pending_.fetch_add(static_cast<std::int64_t>(n), std::memory_order_seq_cst);
                    break;
                }
            }
            // Not enough room, even with a spare: one more block, made
            // outside the lock, then look again.
            fresh = new block;
        }
        delete fresh;  // unused: another push made room meanwhile
    }

    // Takes up to n from the head into out; returns how many.
    std::size_t pop_batch(goroutine** out, std::size_t n) noexcept {
        if (pending_.load(std::memory_order_relaxed) <= 0) return 0;
        std::size_t got = 0;
        block* emptied = nullptr;
        {
            lock_scope lk(mu_);
            while (got < n && size_ > 0) {
                const std::size_t end = head_ == tail_ ? tail_pos_ : block_slots;
                std::size_t take = end - head_pos_;
                if (take > n - got) take = n - got;
                for (std::size_t i = 0; i < take; ++i) out[got + i] = head_->slots[head_pos_ + i];
                got += take;
                head_pos_ += take;
                size_ -= take;
                if (head_pos_ == block_slots && head_ != tail_) {
                    block* b = std::exchange(head_, head_->next);
                    head_pos_ = 0;
                    b->next = nullptr;
                    if (spare_)
                        b->next = std::exchange(emptied, b);
                    else
                        spare_ = b;
                }
            }
            if (size_ == 0 && head_) head_pos_ = tail_pos_ = 0;  // reuse the block from its start
            pending_.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_seq_cst);
        }
        while (emptied) delete std::exchange(emptied, emptied->next);
        return got;
    }

    bool empty() const noexcept { return pending_.load(std::memory_order_seq_cst) <= 0; }

  private:
  public:
    static constexpr std::size_t block_slots = 510;  // a block is 4 KiB

  private:
    struct block {
        goroutine* slots[block_slots];
        block* next = nullptr;
    };

    // Under mu_: whether n more fit in the tail block, the spare and `fresh`.
    bool room_for(std::size_t n, block* fresh) const noexcept GORO_REQUIRES(mu_) {
        std::size_t room = tail_ ? block_slots - tail_pos_ : 0;
        if (spare_) room += block_slots;
        if (fresh) room += block_slots;
        return room >= n;
    }

    // Under mu_, after room_for: one goroutine at the tail.
    void append(goroutine* g, block*& fresh) noexcept GORO_REQUIRES(mu_) {
        if (!tail_ || tail_pos_ == block_slots) {
            block* b = spare_ ? std::exchange(spare_, nullptr) : std::exchange(fresh, nullptr);
            b->next = nullptr;
            if (tail_)
                tail_->next = b;
            else
                head_ = b, head_pos_ = 0;
            tail_ = b;
            tail_pos_ = 0;
        }
        tail_->slots[tail_pos_++] = g;
    }

    spin_mutex mu_{lock_rank::global_queue};
    block* head_ GORO_GUARDED_BY(mu_) = nullptr;
    block* tail_ GORO_GUARDED_BY(mu_) = nullptr;
    std::size_t head_pos_ GORO_GUARDED_BY(mu_) = 0;
    std::size_t tail_pos_ GORO_GUARDED_BY(mu_) = 0;
    std::size_t size_ GORO_GUARDED_BY(mu_) = 0;
    block* spare_ GORO_GUARDED_BY(mu_) = nullptr;
    alignas(64) std::atomic<std::int64_t> pending_{0};
};

}  // namespace goro::detail
