// stacks/stack_pool.cpp — slab allocation of goroutine stacks. See the header
// for the slot kinds. Invariants: a slot is on at most one free list (the
// shared one or one worker's cache); slabs are never unmapped (slots are
// reused), so slot descriptors stay valid for the life of the process.
#include "stacks/stack_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>

#include "stacks/stack_config.hpp"

namespace goro::detail {

namespace {

std::size_t read_max_map_count() {
    std::ifstream f("/proc/sys/vm/max_map_count");
    std::size_t n = 0;
    if (f >> n && n > 0) return n;
    return 65530;
}

// Slots per slab: small slabs while guarding (each slot costs two mappings
// anyway), large ones after, so a million stacks need ~1000 mappings.
constexpr std::size_t guarded_slab_slots = 64;
constexpr std::size_t unguarded_slab_bytes = std::size_t{1} << 30;

}  // namespace

stack_pool& stack_pool::instance() {
    static stack_pool* pool = new stack_pool;  // never destroyed: stacks outlive statics
    return *pool;
}

void stack_pool::configure(std::size_t stack_size) {
    const stack_config c = read_stack_config(stack_size, default_stack_size);  // may throw
    std::lock_guard lk(mu_);
    if (slot_size_ == 0) {
        // A quarter of the mapping cap, two mappings per guarded slot.
        guard_budget_ = read_max_map_count() / 4 / 2;
        if (c.guarded_stacks_set) guard_budget_ = std::min(guard_budget_, c.guarded_stacks);
    }
    if (c.stack_size != slot_size_) {
        // Slots of the old size stay in their slabs (never handed out again).
        free_.clear();
        slot_size_ = c.stack_size;
    }
}

void stack_pool::grow_locked() {
    if (slot_size_ == 0) {
        mu_.unlock();
        try {
            configure(0);
        } catch (...) {
            mu_.lock();  // the caller's guard unlocks it
            throw;
        }
        mu_.lock();
    }
    const bool guarded = guard_budget_ >= guarded_slab_slots;
    const std::size_t count =
        guarded ? guarded_slab_slots : std::max<std::size_t>(16, unguarded_slab_bytes / slot_size_);
    const std::size_t bytes = count * slot_size_;
    free_.reserve(total_slots_ + count);  // release_batch must never allocate
    slabs_.reserve(slabs_.size() + 1);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        std::fprintf(stderr, "goro: cannot reserve %zu bytes for goroutine stacks\n", bytes);
        throw std::bad_alloc();
    }
    slab s;
    s.base = reinterpret_cast<std::uintptr_t>(mem);
    s.slot_count = count;
    s.slot_size = slot_size_;
    s.guarded = guarded;
    s.slots = new stack_slot[count];
    for (std::size_t i = 0; i < count; ++i) {
        stack_slot& d = s.slots[i];
        std::uintptr_t lo = s.base + i * slot_size_;
        if (guarded) {
            ::mprotect(reinterpret_cast<void*>(lo), page_size, PROT_NONE);
            lo += page_size;
        }
        d.lo = lo;
        d.hi = s.base + (i + 1) * slot_size_;
        d.guarded = guarded;
    }
    // Push in reverse so the lowest slot is handed out first.
    for (std::size_t i = count; i-- > 0;) free_.push_back(&s.slots[i]);
    if (guarded) guard_budget_ -= count;
    guarded_slots_ += guarded ? count : 0;
    total_slots_ += count;
    slabs_.push_back(s);
}

stack_slot* stack_pool::acquire() {
    stack_slot* s = nullptr;
    acquire_batch(&s, 1);
    return s;
}

void stack_pool::release(stack_slot* s) noexcept {
    release_batch(&s, 1);
}

std::size_t stack_pool::acquire_batch(stack_slot** out, std::size_t n) {
    std::lock_guard lk(mu_);
    if (free_.empty()) grow_locked();
    const std::size_t got = std::min(n, free_.size());
    std::copy(free_.end() - static_cast<std::ptrdiff_t>(got), free_.end(), out);
    free_.resize(free_.size() - got);
    return got;
}

void stack_pool::release_batch(stack_slot** in, std::size_t n) noexcept {
    std::lock_guard lk(mu_);
    for (std::size_t i = 0; i < n; ++i) {
        if (static_cast<std::size_t>(in[i]->hi - in[i]->lo) + (in[i]->guarded ? page_size : 0) !=
            slot_size_)
            continue;  // a slot of an older stack size: retired
        free_.push_back(in[i]);
    }
}

bool stack_pool::trim(stack_slot* s, std::uintptr_t low_water, bool probe) noexcept {
    const std::uintptr_t keep_from = (s->hi - hot_stack_bytes) & ~(page_size - 1);
    if (keep_from <= s->lo) return false;
    // Deep use shows in the lowest stack pointer seen at a switch, or in the
    // word just below the hot region (zero until something wrote it). The
    // probe may fault in the zero page, so callers ask for it only now and
    // then (hot slots are reused LIFO, so a deep one is probed soon enough).
    bool deep = low_water != 0 && low_water < keep_from;
    if (!deep && probe)
        deep = *reinterpret_cast<volatile std::uintptr_t*>(keep_from - sizeof(void*)) != 0;
    if (deep) ::madvise(reinterpret_cast<void*>(s->lo), keep_from - s->lo, MADV_DONTNEED);
    return deep;
}

stack_slot* stack_cache::acquire() {
    if (n_ == 0) n_ = stack_pool::instance().acquire_batch(items_, batch);
    return items_[--n_];
}

void stack_cache::release(stack_slot* s) noexcept {
    if (n_ == capacity) {
        stack_pool::instance().release_batch(items_ + (capacity - batch), batch);
        n_ -= batch;
    }
    items_[n_++] = s;
}

void stack_cache::flush() noexcept {
    stack_pool::instance().release_batch(items_, n_);
    n_ = 0;
}

}  // namespace goro::detail
