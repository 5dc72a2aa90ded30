// goro/mutex.hpp — sync.Mutex and sync.RWMutex for goroutines.
//
//   goro::mutex m;
//   { std::lock_guard lk(m); ... }        // or std::unique_lock / std::scoped_lock
//   goro::rw_mutex rw;
//   { std::shared_lock lk(rw); ... }      // many readers
//   { std::lock_guard lk(rw); ... }       // one writer
//
// Both park a goroutine that has to wait (a plain thread blocks) instead of
// blocking its worker, and both may be held across parks (channel
// operations, sleeps). Unlocking from another goroutine than the one that
// locked is allowed, as in Go.
//
// mutex: normally a new locker may barge ahead of waiters (fast under
// contention); a waiter that has waited over 1 ms gets the lock handed to it
// directly at the next unlock, so no waiter starves (Go's starvation mode).
// rw_mutex: a waiting writer blocks new readers; readers that queued behind a
// writer all get in when it unlocks; writers are served FIFO.
// Requires: unlock only what is locked — otherwise goro::misuse_error.
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
    mutex() = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    void lock() {
        std::uint32_t unlocked = 0;
        if (!locked_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                             std::memory_order_relaxed))
            lock_slow();
    }
    bool try_lock() noexcept {
        std::uint32_t unlocked = 0;
        return locked_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                               std::memory_order_relaxed);
    }
    void unlock();

  private:
    void lock_slow();
    std::atomic<std::uint32_t> locked_{0};
    std::atomic<std::uint32_t> nwaiters_{0};
    detail::spin_mutex qmu_;
    detail::sync_queue q_;  // guarded by qmu_
};

class rw_mutex {
  public:
    rw_mutex() = default;
    rw_mutex(const rw_mutex&) = delete;
    rw_mutex& operator=(const rw_mutex&) = delete;

    void lock();
    bool try_lock();
    void unlock();
    void lock_shared();
    bool try_lock_shared();
    void unlock_shared();

  private:
    detail::spin_mutex mu_;
    std::int64_t readers_ = 0;  // readers holding it
    bool writer_ = false;       // a writer holds it
    std::int64_t writers_waiting_ = 0;
    detail::sync_queue readq_, writeq_;
};

}  // namespace goro
