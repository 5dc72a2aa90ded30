// goro/mutex.hpp — sync.Mutex for goroutines (sync.RWMutex: goro/rw_mutex.hpp).
//
//   goro::mutex m;
//   { std::lock_guard lk(m); ... }        // or std::unique_lock / std::scoped_lock
//
// Lockable. Parks a goroutine that has to wait (a plain thread blocks)
// instead of blocking its worker, and may be held across parks (channel
// operations, sleeps). Unlocking from another goroutine than the one that
// locked is allowed, as in Go.
//
// Fairness: normally a new locker may barge ahead of waiters (fast under
// contention); a waiter that has waited over 1 ms gets the lock handed to it
// directly at the next unlock, so no waiter starves (Go's starvation mode).
// Requires: unlock only what is locked — otherwise goro::misuse_error
// ("goro::mutex::unlock: unlock of unlocked mutex").
// Memory: unlock happens-before the next lock that acquires.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/intrusive_list.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro {

namespace detail {
struct sync_waiter;
using sync_queue = intrusive_list<sync_waiter>;
}  // namespace detail

class mutex {
  public:
    // Unlocked.
    mutex() = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    // Takes the lock, parking (blocking a plain thread) until it is free.
    void lock() {
        std::uint32_t unlocked = 0;
        if (!locked_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                             std::memory_order_relaxed))
            lock_slow();
    }
    // Takes the lock if it is free right now; never waits.
    bool try_lock() noexcept {
        std::uint32_t unlocked = 0;
        return locked_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                               std::memory_order_relaxed);
    }
    // Releases the lock (hands it to a starving waiter, if there is one).
    // Throws misuse_error if it is not locked.
    void unlock();

  private:
    void lock_slow();
    detail::sync_waiter* pop_waiter_locked() noexcept;
    std::atomic<std::uint32_t> locked_{0};
    std::atomic<std::uint32_t> nwaiters_{0};
    detail::spin_mutex qmu_;
    detail::sync_queue q_;  // guarded by qmu_
};

}  // namespace goro
