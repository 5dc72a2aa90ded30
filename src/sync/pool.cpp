// sync/pool.cpp — goro::pool's type-erased core: a small slot array per
// worker thread and a shared, locked overflow.
//
// Invariants: shards_[i] (and the slots in it) is read and written only on
// worker i's thread — by the goroutine running there, between two of its
// switches (goroutines are never preempted, so no other code runs on that
// thread meanwhile) — and by the destructor, which requires that no get()
// or put() is in progress. Worker i of a later runtime is another thread;
// the old one was joined before the new one started, so the shard passes on
// with a happens-before. The overflow's slots are guarded by its lock.
// Objects dropped (put() with both full) are destroyed outside every lock.
// Lock order: the overflow's lock is a leaf; user code (destroy) never runs
// under it.
#include <new>

#include "goro/detail/spin_mutex.hpp"
#include "goro/pool.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

// One cache line: a count and 7 slots.
struct alignas(64) pool_core::shard {
    static constexpr std::uint32_t slots = 7;
    std::uint32_t n = 0;
    void* items[slots] = {};
};

struct pool_core::overflow {
    static constexpr std::uint32_t slots = 128;
    spin_mutex mu{lock_rank::pool};
    std::uint32_t n GORO_GUARDED_BY(mu) = 0;
    void* items[slots] GORO_GUARDED_BY(mu) = {};
};

pool_core::pool_core(void (*destroy)(void*) noexcept)
    : destroy_(destroy), overflow_(new overflow) {}

pool_core::~pool_core() {
    for (shard* s : shards_) {
        if (!s) continue;
        for (std::uint32_t i = 0; i < s->n; ++i) destroy_(s->items[i]);
        delete s;
    }
    {
        lock_scope lk(overflow_->mu);
        for (std::uint32_t i = 0; i < overflow_->n; ++i) destroy_(overflow_->items[i]);
        overflow_->n = 0;
    }
    delete overflow_;
}

// The calling worker's shard (made on its first use), or null on a plain
// thread, past the 64th worker, or when out of memory.
pool_core::shard* pool_core::local_shard() noexcept {
    worker* w = this_worker();
    if (!w || w->index >= max_shards) return nullptr;
    shard*& s = shards_[w->index];
    if (!s) s = new (std::nothrow) shard;
    return s;
}

void* pool_core::get() noexcept {
    if (shard* s = local_shard(); s && s->n > 0) return s->items[--s->n];
    lock_scope lk(overflow_->mu);
    return overflow_->n > 0 ? overflow_->items[--overflow_->n] : nullptr;
}

void pool_core::put(void* obj) noexcept {
    if (shard* s = local_shard(); s && s->n < shard::slots) {
        s->items[s->n++] = obj;
        return;
    }
    {
        lock_scope lk(overflow_->mu);
        if (overflow_->n < overflow::slots) {
            overflow_->items[overflow_->n++] = obj;
            return;
        }
    }
    destroy_(obj);  // both full: dropped
}

}  // namespace goro::detail
