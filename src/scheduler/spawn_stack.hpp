// scheduler/spawn_stack.hpp — a worker's bounded stack of goroutines it
// spawned that have not run yet: the owner pushes and pops at one end (the
// newest first, so a tree of spawns runs depth first and only a path of it
// is alive at a time); thieves take from the other end (the oldest: in a
// tree of spawns, the biggest piece of work). A bounded Chase-Lev deque
// (Chase and Lev, SPAA 2005), with the orders of Lê, Pop, Cohen and Zappa
// Nardelli, "Correct and efficient work-stealing for weak memory models"
// (PPoPP 2013).
//
// Why it exists: with the spawns in the FIFO local queue, skynet (a 10-ary
// tree of 1.1M goroutines) ran breadth first and had ~100,000 goroutines
// alive at once, each on its own cold stack: 3.0 s at procs=1, against 0.25
// s depth first (docs/performance.md, sixth session).
//
// Invariants: top only grows (thieves, and the owner taking the last entry,
// advance it by CAS); bottom is written only by the owner; 0 <= bottom - top
// <= capacity outside a pop in progress. Slots in [top, bottom) hold
// goroutines owned by this stack. The owner writes a slot only at bottom,
// which never reaches top + capacity, so a thief's slot read is valid if its
// CAS on top succeeds (top never goes back: no ABA).
// Memory order: every store of bottom is a release (a plain store on x86),
// so whichever value a thief's acquire load reads, it sees the records of
// the goroutines pushed before it (a relaxed store in pop would have broken
// that chain: it is no part of the push's release sequence). The owner's pop and a
// thief's steal each have a seq_cst fence between their store/load of one
// index and their load of the other, so they cannot both miss each other
// over the last entry (the CAS on top decides it).
#pragma once

#include <atomic>
#include <cstdint>

#include "diagnostics/assert.hpp"
#include "fibers/goroutine.hpp"

namespace goro::detail {

template <std::uint32_t Capacity>
class basic_spawn_stack {
    static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "a power of two");

  public:
    static constexpr std::uint32_t capacity = Capacity;

    // Owner only. False when full (the caller queues g elsewhere).
    bool push(goroutine* g) noexcept {
        const std::int64_t b = bottom_.load(std::memory_order_relaxed);
        const std::int64_t t = top_.load(std::memory_order_acquire);
        GORO_ASSERT(b - t <= std::int64_t(capacity), "spawn_stack: more entries than slots");
        if (b - t >= std::int64_t(capacity)) return false;
        slots_[std::uint64_t(b) % capacity].store(g, std::memory_order_relaxed);
        bottom_.store(b + 1, std::memory_order_release);
        return true;
    }

    // Owner only: the newest, or null.
    goroutine* pop() noexcept {
        const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
        // Cheap exit when empty, without the store and the fence: only the
        // owner moves bottom, and top never passes it by more than the
        // pop in progress (there is none now).
        if (b < top_.load(std::memory_order_relaxed)) return nullptr;
        bottom_.store(b, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        std::int64_t t = top_.load(std::memory_order_relaxed);
        if (t > b) {  // a thief took the last one
            bottom_.store(b + 1, std::memory_order_release);
            return nullptr;
        }
        goroutine* g = slots_[std::uint64_t(b) % capacity].load(std::memory_order_relaxed);
        if (t == b) {  // the last one: race the thieves for it
            if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                g = nullptr;
            bottom_.store(b + 1, std::memory_order_release);
        }
        return g;
    }

    // Thief (or the owner, to hand its oldest on): the oldest, or null when
    // empty or another thief got it first.
    goroutine* steal() noexcept {
        std::int64_t t = top_.load(std::memory_order_acquire);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::int64_t b = bottom_.load(std::memory_order_acquire);
        if (t >= b) return nullptr;
        goroutine* g = slots_[std::uint64_t(t) % capacity].load(std::memory_order_relaxed);
        if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed))
            return nullptr;
        return g;
    }

    // How many it held at some moment (racy for anyone but the owner).
    std::uint32_t size() const noexcept {
        const std::int64_t t = top_.load(std::memory_order_acquire);
        const std::int64_t b = bottom_.load(std::memory_order_acquire);
        return b > t ? std::uint32_t(b - t) : 0u;
    }
    bool empty() const noexcept { return size() == 0; }
    // Advances each time a thief (or the owner's last pop) takes the oldest:
    // the monitor compares two readings to see the oldest sat still.
    std::int64_t taken_from_bottom() const noexcept { return top_.load(std::memory_order_relaxed); }

  private:
    alignas(64) std::atomic<std::int64_t> top_{0};
    alignas(64) std::atomic<std::int64_t> bottom_{0};
    alignas(64) std::atomic<goroutine*> slots_[capacity];
};

// 128: skynet's tree (10-ary, 6 deep) needs ~55; 256 cost spawn (a million
// goroutines spawned in a loop, each pending one holding its stack's top
// page) ~10% at procs=1 with nothing gained; 64 overflowed in skynet and
// sent it back towards breadth first (1.0-1.6 s).
using spawn_stack = basic_spawn_stack<128>;

}  // namespace goro::detail
