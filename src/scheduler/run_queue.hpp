// scheduler/run_queue.hpp — a worker's bounded local run queue.
//
// A ring of `Capacity` goroutine pointers (256 in the scheduler; tests use
// tiny rings to make wrap-around and full/empty races frequent). The owner pushes at tail and pops
// at head; thieves take half from head. head is advanced only by CAS (owner pop and thieves race
// there); tail is stored only by the owner.
//
// Invariants: 0 <= tail - head <= capacity. Slots in [head, tail) hold
// goroutines owned by this queue. A thief reads slots before its CAS on head;
// the CAS succeeding proves the owner had not reused them (the owner writes a
// slot only at tail, which never laps head + capacity).
// Memory order: the owner's release store of tail publishes the goroutine;
// consumers load tail with acquire. Slots are relaxed atomics (read racily
// by thieves, validated by the CAS).
#pragma once

#include <atomic>
#include <cstdint>

#include "diagnostics/assert.hpp"
#include "fibers/goroutine.hpp"

namespace goro::detail {

template <std::uint32_t Capacity>
class basic_run_queue {
    static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "a power of two");

  public:
    static constexpr std::uint32_t capacity = Capacity;

    // Owner only. False when full (the caller spills half to the global queue).
    bool push(goroutine* g) noexcept {
        std::uint32_t h = head_.load(std::memory_order_acquire);
        std::uint32_t t = tail_.load(std::memory_order_relaxed);
        GORO_ASSERT(t - h <= capacity, "run_queue: more entries than slots");
        if (t - h >= capacity) return false;
        slots_[t % capacity].store(g, std::memory_order_relaxed);
        tail_.store(t + 1, std::memory_order_release);
        return true;
    }

    // Owner only: moves the older half plus `extra` out, for the global queue.
    std::uint32_t take_half(goroutine** out) noexcept {
        std::uint32_t h = head_.load(std::memory_order_acquire);
        std::uint32_t t = tail_.load(std::memory_order_relaxed);
        std::uint32_t n = (t - h) / 2;
        if (n == 0) return 0;
        for (std::uint32_t i = 0; i < n; ++i)
            out[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
        if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return 0;
        return n;
    }

    // Owner only.
    goroutine* pop() noexcept {
        std::uint32_t h = head_.load(std::memory_order_acquire);
        for (;;) {
            std::uint32_t t = tail_.load(std::memory_order_relaxed);
            GORO_ASSERT(t - h <= capacity, "run_queue: head passed tail");
            if (t == h) return nullptr;
            goroutine* g = slots_[h % capacity].load(std::memory_order_relaxed);
            if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
                // The next one's record will be needed soon, and is cold
                // when the queue is long (hotchan, 1000 goroutines: the
                // first store to a record was 82% of execute()). A
                // prefetch never faults, even if a thief takes it. (A/B on a
                // quiet machine: skynet 5-10% faster with it; perf charges the
                // TLB walk to the prefetch now. docs/performance.md.)
                if (t - h > 1) {
                    const char* next = reinterpret_cast<const char*>(
                        slots_[(h + 1) % capacity].load(std::memory_order_relaxed));
                    __builtin_prefetch(next, 1);
                    __builtin_prefetch(next + 64, 1);
                }
                return g;
            }
        }
    }

    // Thief: moves half of victim's queue into this (empty, owned-by-caller)
    // queue and returns one of them to run, or null.
    goroutine* steal_from(basic_run_queue& victim) noexcept {
        std::uint32_t t = tail_.load(std::memory_order_relaxed);
        GORO_ASSERT(t == head_.load(std::memory_order_relaxed),
                    "run_queue: stealing into a non-empty queue");
        std::uint32_t n = victim.grab(slots_, t);
        GORO_ASSERT(n <= capacity / 2, "run_queue: stole more than half");
        if (n == 0) return nullptr;
        --n;
        goroutine* g = slots_[(t + n) % capacity].load(std::memory_order_relaxed);
        if (n > 0) tail_.store(t + n, std::memory_order_release);
        return g;
    }

    std::uint32_t size() const noexcept {
        std::uint32_t h = head_.load(std::memory_order_acquire);
        std::uint32_t t = tail_.load(std::memory_order_acquire);
        return t - h;
    }
    bool empty() const noexcept { return size() == 0; }

  private:
    // Copies half of this queue into dst ring starting at dst_tail; returns count.
    std::uint32_t grab(std::atomic<goroutine*>* dst, std::uint32_t dst_tail) noexcept {
        for (;;) {
            std::uint32_t h = head_.load(std::memory_order_acquire);
            std::uint32_t t = tail_.load(std::memory_order_acquire);
            std::uint32_t n = t - h;
            n -= n / 2;
            if (n == 0) return 0;
            if (n > capacity / 2) continue;  // inconsistent snapshot; retry
            for (std::uint32_t i = 0; i < n; ++i)
                dst[(dst_tail + i) % capacity].store(
                    slots_[(h + i) % capacity].load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
            if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
        }
    }

    alignas(64) std::atomic<std::uint32_t> head_{0};
    alignas(64) std::atomic<std::uint32_t> tail_{0};
    alignas(64) std::atomic<goroutine*> slots_[capacity];
};

using run_queue = basic_run_queue<256>;

}  // namespace goro::detail
