// goro/semaphore.hpp — a weighted semaphore (golang.org/x/sync/semaphore).
//
//   goro::semaphore s(10);
//   s.acquire(3);  ...  s.release(3);
//   if (auto ec = s.acquire(ctx, 2)) return ec;   // gave up: ctx done
//
// Waiters are served FIFO: a large request at the head is not starved by a
// stream of small ones behind it. acquire parks a goroutine (blocks a plain
// thread). The context-aware acquire returns ctx.err() when ctx is done
// first and then holds nothing — also when ctx was already done on entry,
// even if permits were free; if the permits were granted at the same moment
// as the cancellation, it keeps them and returns {} (as Go does). A waiter
// that gives up lets the waiters queued behind it in if they now fit.
// Requires: n <= size for a blocking acquire (else goro::misuse_error, where
// Go would block forever); release no more than is held (else
// goro::negative_counter_error).
#pragma once

#include <cstdint>
#include <system_error>

#include "goro/detail/intrusive_list.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "goro/mutex.hpp"

namespace goro {

class context;

class semaphore {
  public:
    explicit semaphore(std::int64_t size);
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    void acquire(std::int64_t n = 1);
    std::error_code acquire(const context& ctx, std::int64_t n = 1);
    bool try_acquire(std::int64_t n = 1);
    void release(std::int64_t n = 1);

    std::int64_t size() const noexcept { return size_; }

  private:
    struct waiter;
    void check(std::int64_t n, const char* who) const;
    waiter* grant_locked();
    static void ready_all(waiter* wake) noexcept;
    void abandon(waiter& w);
    const std::int64_t size_;
    detail::spin_mutex mu_;
    std::int64_t cur_ = 0;              // permits held
    detail::intrusive_list<waiter> q_;  // FIFO of blocked acquires
};

}  // namespace goro
