// sync/sync_queue.hpp — the FIFO of parked waiters under mutex, rw_mutex,
// cond and semaphore. Always used under the owning primitive's spin_mutex.
// Protocol (goro/detail/park.hpp): a waker pops a waiter and claims its
// parker under the lock, fills in `granted`, and readies it after unlocking;
// a waiter that is unwound at shutdown removes itself (remove is a no-op when
// a waker already popped it).
#pragma once

#include <cstdint>

#include "goro/detail/park.hpp"
#include "goro/mutex.hpp"

namespace goro::detail {

struct sync_waiter {
    parker* p = nullptr;
    sync_waiter* next = nullptr;
    sync_waiter* prev = nullptr;
    bool queued = false;
    bool granted = false;       // the waker handed over what was waited for
    std::int64_t n = 0;         // semaphore: permits wanted
    std::uint64_t ticket = 0;   // cond: wait ticket
    std::int64_t since_ns = 0;  // mutex: when it started waiting
    bool writer = false;        // rw_mutex
};

// Pops waiters until one can be claimed (others belong to shutdown).
inline sync_waiter* pop_claimed(sync_queue& q) noexcept {
    while (sync_waiter* w = q.head) {
        q.remove(w);
        if (claim(w->p)) return w;
    }
    return nullptr;
}

// Parks the caller as waiter w (already queued in q) on lock mu; returns
// with mu unlocked. On shutdown, dequeues w and unwinds.
template <class Lock>
void park_waiter(Lock& mu, sync_queue& q, sync_waiter& w, wait_reason r) {
    auto unlock = [](void* m) { static_cast<Lock*>(m)->unlock(); };
    if (park(r, unlock, &mu) == wake::unwind) {
        mu.lock();
        q.remove(&w);
        mu.unlock();
        throw_unwind();
    }
}

}  // namespace goro::detail
