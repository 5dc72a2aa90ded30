// stacks/stack_pool.hpp — goroutine stacks: large virtual reservations that
// grow on demand, carved from slabs, pooled per worker and reused hot.
//
// A slot is `stack_size` bytes of address space. Its top holds the goroutine
// record and closure; the rest is stack that the kernel commits a page at a
// time on first touch, so a goroutine that used little stack costs about one
// page of RSS. The top page, which every goroutine writes, is committed when
// the slot is carved, for a batch of slots in one system call where the
// kernel allows it (Linux 6.13+): a carved slot not yet used costs that page.
//
// Protection. The pool picks one scheme when it is first configured:
//  - guard regions (Linux 6.13+, unless GORO_GUARD_REGIONS=0): the lowest
//    page of every slot carries a MADV_GUARD_INSTALL marker. It faults like
//    a PROT_NONE page but does not split the mapping, so a ~1 GiB slab of
//    slots stays one mapping and every stack is guarded. Markers are
//    installed when slots are first carved, a batch at a time.
//  - budget (older kernels, or GORO_GUARD_REGIONS=0): Linux caps a process
//    at vm.max_map_count mappings (65530 by default) and an mprotect guard
//    page splits a mapping in two, so only the first max_map_count / 8
//    slots (or GORO_GUARDED_STACKS) get a PROT_NONE page; later slots are
//    unguarded, and their lowest page is a canary that must read all zero,
//    checked whenever the goroutine switches out and when it exits: an
//    overflow is reported after the fact and may already have overwritten
//    the neighbouring slot's top.
// Either way an overflow into a guard ends in the SIGSEGV handler
// (diagnostics/panic.cpp), which names the goroutine.
//
// Sized slots: a goroutine started with goro::spawn_options::stack_size (or
// run()'s main goroutine, 8 MiB by default) whose size differs from the
// slabs' gets a slot of its own mapping, laid out like a slab slot (guard
// or canary page lowest, record at the top) and guarded: a guard region,
// else an mprotect page (outside the slabs' budget, which GORO_GUARDED_STACKS
// sets: a sized stack costs a mapping of its own anyway), else — when even
// that fails, out of mappings — the canary. Sized slots are kept for reuse by later goroutines of
// the same size (LIFO) and never unmapped, like slabs: shutdown and diagnostics may still read a
// dead goroutine's record.
//
// Invariants: a slot is on at most one free list (the shared one, the
// shelf of other sizes, or one worker's cache); slabs are never unmapped and guards never removed,
// so slot descriptors stay valid, and a slot keeps its guard, for the life of the process
// (MADV_DONTNEED in trim starts above the guard, and does not remove guard markers anyway);
// slots[0, slot_count) of a slab are carved (descriptor filled, guard installed), the rest
// untouched; the free list's capacity is at least total_slots(), so releasing never allocates.
//
// Ownership: the global pool (slabs + shared free list) is guarded by its
// mutex; a worker's cache is touched only by that worker. Lock order: pool
// mutex is a leaf.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "goro/detail/spin_mutex.hpp"
#include "parking/ranked_mutex.hpp"

namespace goro::detail {

struct stack_config;

inline constexpr std::size_t page_size = 4096;
// 1 MiB apart, every two stacks cost a page-table page. Smaller defaults
// measured much faster for a million parked goroutines and were not taken:
// this is the depth users count on (docs/performance.md, "Stack spacing").
inline constexpr std::size_t default_stack_size = 1 << 20;
// Pages below this distance from the top stay committed across reuse.
inline constexpr std::size_t hot_stack_bytes = 64 << 10;

// What sits below a slot's stack.
enum class stack_guard : std::uint8_t {
    none,    // nothing: the canary page below `lo` is the only check
    page,    // an mprotect(PROT_NONE) page, a mapping of its own
    region,  // a MADV_GUARD_INSTALL marker on the page, no extra mapping
};

enum class guard_scheme : std::uint8_t { unset, regions, budget };

// A slot is [lo - page_size, hi): its lowest page is the guard (region or
// mprotect page) or, in an unguarded slot, the canary page; the stack and
// the goroutine record use [lo, hi).
struct stack_slot {
    std::uintptr_t lo = 0;  // lowest usable address, just above the guard or canary page
    std::uintptr_t hi = 0;  // one past the highest address
    stack_guard guard = stack_guard::none;
    bool guarded() const noexcept { return guard != stack_guard::none; }
    // The goroutine record at the slot's top has been constructed (by the
    // first spawn on this slot; later spawns reset it, see fibers/goroutine.hpp).
    // Written once (release) by that spawn, read (acquire) by shutdown's and
    // the dump's scans.
    std::atomic<bool> has_record{false};
    // A slot of its own mapping (acquire_sized), not of a slab: it goes back
    // with release_sized, never to a worker's cache. Fixed at creation.
    bool sized = false;
    std::size_t bytes() const noexcept {
        return hi - lo + page_size;
    }  // guard/canary page included
};

struct slab {
    std::uintptr_t base = 0;
    std::size_t capacity = 0;    // slots the mapping has room for
    std::size_t slot_count = 0;  // slots carved so far
    std::size_t slot_size = 0;
    stack_slot* slots = nullptr;  // descriptors, `capacity` of them
};

class stack_pool {
  public:
    static stack_pool& instance();

    // Checks options::stack_size (0: GORO_STACK_SIZE, else 1 MiB) and the
    // other GORO_* stack variables (stacks/stack_config.hpp), throwing
    // goro::misuse_error before changing anything if one is bad; then fixes
    // the slot size. Only while no stack is in use (between runs). The
    // protection scheme and guard budget are fixed by the first call.
    void configure(std::size_t stack_size);
    std::size_t slot_size() const noexcept { return slot_size_; }
    guard_scheme scheme() const noexcept { return scheme_; }

    // Shared pool: used by workers' caches in batches and by plain threads.
    stack_slot* acquire();
    void release(stack_slot* s) noexcept;
    std::size_t acquire_batch(stack_slot** out, std::size_t n);
    void release_batch(stack_slot** in, std::size_t n) noexcept;

    // A slot of `bytes` (whole pages, min_stack_size..max_stack_size) that
    // is not of the slabs' size: reused, or newly mapped (std::bad_alloc when
    // the mapping fails).
    stack_slot* acquire_sized(std::size_t bytes);
    void release_sized(stack_slot* s) noexcept;
    std::size_t sized_slots() const noexcept { return sized_.size(); }

    // Calls f(slot) for every slot ever carved or mapped, sized ones included
    // (for diagnostics and shutdown).
    template <class F>
    void for_each_slot(F&& f) {
        lock_scope lk(mu_);
        for (auto& s : slabs_)
            for (std::size_t i = 0; i < s.slot_count; ++i) f(s.slots[i]);
        for (stack_slot* s : sized_) f(*s);
    }

    // Prepares a used slot for reuse: returns deep-used pages to the kernel.
    // Returns whether the slot was found to have been used deeply.
    static bool trim(stack_slot* s, std::uintptr_t low_water, bool probe) noexcept;

    std::size_t guarded_slots() const noexcept { return guarded_slots_; }
    // Whether carving commits each new slot's top page (process_madvise
    // with MADV_POPULATE_WRITE, Linux 6.13+): false once the kernel refused.
    bool commits_tops() const noexcept { return populate_ok_; }
    std::size_t total_slots() const noexcept { return total_slots_; }

  private:
    void apply_locked(const stack_config& c);
    void grow_locked();
    slab& map_slab_locked();
    void carve_locked(slab& s, std::size_t n);
    void install_guard_regions(stack_slot* first, std::size_t n) noexcept;
    void populate_tops(const stack_slot* first, std::size_t n) noexcept;

    ranked_mutex mu_{lock_rank::stack_pool};
    std::vector<slab> slabs_;
    // Free slots, LIFO, in a contiguous array: taking a batch copies
    // pointers instead of chasing links through descriptors that the last
    // releaser (often another core) wrote. Capacity >= total_slots_, so
    // release never allocates.
    std::vector<stack_slot*> free_;
    // Free slots of the sizes not in use now (options::stack_size changed
    // between runs), taken back when their size comes back. Capacity >= the
    // slots there were at the last change, so release never allocates.
    std::vector<stack_slot*> shelved_;
    std::size_t slot_size_ = 0;
    guard_scheme scheme_ = guard_scheme::unset;
    std::size_t guard_budget_ = 0;    // mprotect-guarded slots still allowed (budget scheme)
    bool process_madvise_ok_ = true;  // false once process_madvise refused guard markers
    bool populate_ok_ = true;         // false once it refused MADV_POPULATE_WRITE
    std::size_t guarded_slots_ = 0;
    std::size_t total_slots_ = 0;
    // Every sized slot ever mapped, and the free ones (capacity >= sized_'s
    // size, so release_sized never allocates). Not counted in total_slots_.
    std::vector<stack_slot*> sized_;
    std::vector<stack_slot*> sized_free_;
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

// Whether this kernel installs MADV_GUARD_INSTALL guard markers (tried once
// on a scratch mapping, and checked to fault; the answer is cached).
bool guard_regions_supported() noexcept;

}  // namespace goro::detail
