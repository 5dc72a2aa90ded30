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
// Lifetime: like std::mutex, it may be destroyed as soon as it is unlocked
// and no call on it is in progress elsewhere — unlock() touches nothing of
// it after the store that releases it.
// Requires: unlock only what is locked — otherwise goro::misuse_error
// ("goro::mutex::unlock: unlock of unlocked mutex").
// Memory: unlock happens-before the next lock that acquires.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <atomic>
#include <cstdint>

#include "goro/detail/intrusive_list.hpp"

namespace goro {

namespace detail {
struct waiter;
}

// Go's sync.Mutex (see the top of this file).
class mutex {
  public:
    // Unlocked.
    mutex() = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    // Takes the lock, parking (blocking a plain thread) until it is free.
    void lock() {
        std::uint32_t unlocked = 0;
        if (!state_.compare_exchange_strong(unlocked, locked_bit, std::memory_order_acquire,
                                            std::memory_order_relaxed))
            lock_slow();
    }
    // Takes the lock if it is free right now (even with waiters queued);
    // never waits.
    bool try_lock() noexcept {
        std::uint32_t v = state_.load(std::memory_order_relaxed);
        while (!(v & locked_bit))
            if (state_.compare_exchange_weak(v, v | locked_bit, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                return true;
        return false;
    }
    // Releases the lock (hands it to a starving waiter, if there is one).
    // Throws misuse_error if it is not locked.
    void unlock() {
        std::uint32_t v = locked_bit;
        if (!state_.compare_exchange_strong(v, 0, std::memory_order_release,
                                            std::memory_order_relaxed))
            unlock_slow(v);
    }

  private:
    static constexpr std::uint32_t locked_bit = 1;
    static constexpr std::uint32_t waiter_unit = 2;  // waiters queued: state_ / 2
    void lock_slow();
    void unlock_slow(std::uint32_t seen);
    // Locked bit | queued waiters * waiter_unit. The count changes only under
    // this mutex's wait lock (sync/wait_lock.hpp), together with q_.
    std::atomic<std::uint32_t> state_{0};
    detail::intrusive_list<detail::waiter> q_;  // guarded by the wait lock
};

}  // namespace goro
