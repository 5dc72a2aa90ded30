// stacks/stack_pool.hpp — goroutine stacks: large virtual reservations that
// grow on demand, carved from slabs, pooled per worker and reused hot.
//
// A slot is `stack_size` bytes of address space. Its top holds the goroutine
// record and closure; the rest is stack that the kernel commits a page at a
// time on first touch, so a goroutine that used little stack costs about one
// page of RSS.
//
// Two kinds of slot, because Linux caps a process at vm.max_map_count
// mappings (65530 by default) and a guard page splits a mapping in two:
//  - guarded: the lowest page is PROT_NONE; an overflow faults there and the
//    SIGSEGV handler names the goroutine. Costs two mappings per slot. Used
//    until the guard budget (a quarter of max_map_count) is spent.
//  - unguarded: slots of one large slab share one mapping; the lowest word of
//    the slot is a canary checked (must read zero) on every switch away from
//    the goroutine: an overflow is reported after the fact, and may already
//    have overwritten the neighbouring slot's top.
//
// Ownership: the global pool (slabs + shared free list) is guarded by its
// mutex; a worker's cache is touched only by that worker. Lock order: pool
// mutex is a leaf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace goro::detail {

struct stack_slot {
    std::uintptr_t lo = 0;  // lowest usable address (above the guard page, if any)
    std::uintptr_t hi = 0;  // one past the highest address
    bool guarded = false;
};

struct slab {
    std::uintptr_t base = 0;
    std::size_t slot_count = 0;
    std::size_t slot_size = 0;
    bool guarded = false;
    stack_slot* slots = nullptr;  // descriptors, one per slot
};

class stack_pool {
  public:
    static stack_pool& instance();

    // Checks options::stack_size (0: GORO_STACK_SIZE, else 1 MiB) and the
    // other GORO_* stack variables (stacks/stack_config.hpp), throwing
    // goro::misuse_error before changing anything if one is bad; then fixes
    // the slot size. Only while no stack is in use (between runs).
    void configure(std::size_t stack_size);
    std::size_t slot_size() const noexcept { return slot_size_; }

    // Shared pool: used by workers' caches in batches and by plain threads.
    stack_slot* acquire();
    void release(stack_slot* s) noexcept;
    std::size_t acquire_batch(stack_slot** out, std::size_t n);
    void release_batch(stack_slot** in, std::size_t n) noexcept;

    // Calls f(slot) for every slot ever carved (for diagnostics and shutdown).
    template <class F>
    void for_each_slot(F&& f) {
        std::lock_guard lk(mu_);
        for (auto& s : slabs_)
            for (std::size_t i = 0; i < s.slot_count; ++i) f(s.slots[i]);
    }

    // Prepares a used slot for reuse: returns deep-used pages to the kernel.
    // Returns whether the slot was found to have been used deeply.
    static bool trim(stack_slot* s, std::uintptr_t low_water, bool probe) noexcept;

    std::size_t guarded_slots() const noexcept { return guarded_slots_; }
    std::size_t total_slots() const noexcept { return total_slots_; }

  private:
    void grow_locked();
    std::mutex mu_;
    std::vector<slab> slabs_;
    // Free slots, LIFO, in a contiguous array: taking a batch copies
    // pointers instead of chasing links through descriptors that the last
    // releaser (often another core) wrote. Capacity >= total_slots_, so
    // release never allocates.
    std::vector<stack_slot*> free_;
    std::size_t slot_size_ = 0;
    std::size_t guard_budget_ = 0;  // guarded slots still allowed
    std::size_t guarded_slots_ = 0;
    std::size_t total_slots_ = 0;
};

// A worker's private LIFO of free slots, refilled from and spilled to the
// shared pool in batches.
class stack_cache {
  public:
    stack_slot* acquire();
    void release(stack_slot* s) noexcept;
    void flush() noexcept;  // everything back to the shared pool

  private:
    static constexpr std::size_t capacity = 64;
    static constexpr std::size_t batch = 32;
    stack_slot* items_[capacity];
    std::size_t n_ = 0;
};

inline constexpr std::size_t page_size = 4096;
inline constexpr std::size_t default_stack_size = 1 << 20;
// Pages below this distance from the top stay committed across reuse.
inline constexpr std::size_t hot_stack_bytes = 64 << 10;

}  // namespace goro::detail
