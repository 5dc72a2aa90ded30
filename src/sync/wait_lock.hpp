// sync/wait_lock.hpp — the locks that guard the wait queues of the sync
// primitives (mutex, rw_mutex, cond, semaphore, wait_group, once), kept in a
// static table keyed by the primitive's address (Go's semtable) instead of
// inside the primitive.
//
// Why: a primitive may be destroyed as soon as the other party's last call on
// it has returned (as std::mutex and std::latch promise). A releasing call
// that wakes a waiter must still update the primitive's state after it took
// the queue's lock; if that lock lived in the primitive, unlocking it would
// be a write after the release, to memory the woken party may already have
// freed. With the lock outside, the release (the last write to the
// primitive) happens under the lock, and unlocking touches only the table.
//
// Lock order: a wait lock is a leaf; no two are ever held at once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "goro/detail/park.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro::detail {

inline constexpr std::size_t wait_lock_count = 251;  // prime: addresses spread evenly

struct alignas(64) padded_wait_lock {
    spin_mutex mu{lock_rank::wait_lock};
};

extern padded_wait_lock wait_locks[wait_lock_count];

inline spin_mutex& wait_lock_for(const void* object) noexcept {
    auto a = reinterpret_cast<std::uintptr_t>(object);
    return wait_locks[(a >> 4) % wait_lock_count].mu;
}

inline void release_wait_lock(void* m) GORO_NO_THREAD_SAFETY_ANALYSIS {
    static_cast<spin_mutex*>(m)->unlock();
}

// park() for a waiter queued under wl: wl is released after the switch
// (park.hpp, step 5), so the caller returns without it.
inline wake park_releasing(spin_mutex& wl, wait_reason r, park_mode mode, const void* object)
    GORO_RELEASE(wl) GORO_NO_THREAD_SAFETY_ANALYSIS {
    return park(r, &release_wait_lock, &wl, mode, object);
}

}  // namespace goro::detail
