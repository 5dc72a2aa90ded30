// goro/rw_mutex.hpp — sync.RWMutex for goroutines.
//
//   goro::rw_mutex rw;
//   { std::shared_lock lk(rw); ... }      // many readers at once
//   { std::lock_guard lk(rw); ... }       // one writer (or std::unique_lock)
//
// SharedLockable. Parks a goroutine that has to wait (a plain thread blocks)
// and may be held across parks. Unlocking from another goroutine than the
// locker is allowed, as in Go.
//
// Policy: a waiting writer blocks new readers (writers do not starve); when
// a writer unlocks, every reader queued behind it gets in, then the next
// writer (readers do not starve either). Writers are served FIFO. Release
// hands the lock to the waiters it wakes: they never compete again.
// Requires: unlock() only while write-locked, unlock_shared() only while
// read-locked — otherwise goro::misuse_error naming the call.
// Memory: an unlock happens-before the next lock or lock_shared that acquires.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>

#include "goro/detail/intrusive_list.hpp"

namespace goro {

namespace detail {
struct waiter;
class wake_list;
class spin_mutex;
}  // namespace detail

// Go's sync.RWMutex (see the top of this file).
class rw_mutex {
  public:
    rw_mutex() = default;
    rw_mutex(const rw_mutex&) = delete;
    rw_mutex& operator=(const rw_mutex&) = delete;

    // Exclusive (writer) side: waits until no reader or writer holds it.
    void lock();
    bool try_lock();
    void unlock();
    // Shared (reader) side: waits while a writer holds it or is waiting.
    void lock_shared();
    bool try_lock_shared();
    void unlock_shared();

  private:
    void park_queued(detail::spin_mutex& wl, detail::waiter& w);
    void admit_locked(detail::wake_list& woken);
    // Everything below is guarded by this rw_mutex's wait lock
    // (sync/wait_lock.hpp), which lives outside it.
    std::int64_t readers_ = 0;  // readers holding it
    bool writer_ = false;       // a writer holds it
    std::int64_t writers_waiting_ = 0;
    detail::intrusive_list<detail::waiter> readq_, writeq_;
};

}  // namespace goro
