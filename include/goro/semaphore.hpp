// goro/semaphore.hpp — a weighted semaphore (golang.org/x/sync/semaphore).
//
//   goro::semaphore s(10);
//   s.acquire(3);  ...  s.release(3);
//   if (auto ec = s.acquire(ctx, 2)) return ec;   // gave up: ctx done
//
// Waiters are served FIFO: a large request at the head is not starved by a
// stream of small ones behind it. acquire parks a goroutine (blocks a plain
// thread). The context-aware acquire either returns {} holding n permits,
// or returns ctx.err() holding nothing: when ctx is done first, when ctx was
// already done on entry (even if permits were free), and when the permits
// were granted as ctx finished — they are given back (as current x/sync
// does). A waiter that gives up lets the waiters queued behind it in if they
// now fit. Lifetime: may be destroyed as soon as no call on it is in
// progress (release() touches nothing of it after its last state change).
// Requires: n <= size for a blocking acquire (else goro::misuse_error, where
// Go would block forever); release no more than is held (else
// goro::negative_counter_error).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>
#include <system_error>

#include "goro/detail/intrusive_list.hpp"

namespace goro {

class context;
namespace detail {
struct waiter;
class wake_list;
}  // namespace detail

// A weighted semaphore (Go's x/sync/semaphore; see the top of this file).
class semaphore {
  public:
    // Holds size permits. Throws misuse_error if size is negative.
    explicit semaphore(std::int64_t size);
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    // Takes n permits, parking until they are free (FIFO); with ctx, gives up
    // when ctx is done (returns ctx.err()). try_acquire never waits. release
    // gives n back. Throws misuse_error for a negative n or one over size().
    void acquire(std::int64_t n = 1);
    std::error_code acquire(const context& ctx, std::int64_t n = 1);
    bool try_acquire(std::int64_t n = 1);
    void release(std::int64_t n = 1);

    // The permits it holds in all.
    std::int64_t size() const noexcept { return size_; }

  private:
    void check(std::int64_t n, const char* who) const;
    void grant_locked(detail::wake_list& woken);
    void abandon(detail::waiter& w);
    const std::int64_t size_;
    // Guarded by this semaphore's wait lock (sync/wait_lock.hpp).
    std::int64_t cur_ = 0;                      // permits held
    detail::intrusive_list<detail::waiter> q_;  // FIFO of blocked acquires
};

}  // namespace goro
