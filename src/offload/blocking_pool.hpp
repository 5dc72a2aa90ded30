// offload/blocking_pool.hpp — the bounded pool of OS threads that runs
// goro::blocking calls (goro/blocking.hpp; the call records and their
// protocols are in goro/detail/blocking_call.hpp).
//
// One pool for the process, never destroyed (its threads are detached and
// may outlive every runtime). It is independent of the scheduler: pool
// threads are plain threads, and a call's completion readies its goroutine
// with ready() like any plain-thread waker.
//
// Accounting (all under mu_):
//   threads_  pool threads alive, including ones still starting;
//   free_     of those, the ones not running a call (starting, looking at
//             the queue, or asleep waiting for work);
//   wanted_   calls reserved and not yet taken by a thread (submitted and
//             queued, or about to be submitted).
// A reservation starts a thread when free_ < wanted_ (the free threads
// cannot cover the calls waiting) and threads_ < max_. So threads_ <= max_
// (the bound: at most max_ calls run at once), and a reserved call is
// either taken by a free thread or waits in FIFO order for a busy one.
// A thread that found nothing for keep_alive, or that is beyond max_ (the
// bound was lowered), exits.
//
// Sleep and wake: a free thread sleeps on the futex word work_seq_, read
// under mu_ before it unlocks; a submit bumps the word under mu_ and wakes
// one sleeper after unlocking, so a submit between the read and the sleep
// makes the futex return at once (no lost wake-up).
//
// Shutdown drains the pool: in_flight_ counts calls from reservation to the
// end of their execute; wait_idle() sleeps until it is zero.
//
// Lock order: mu_ is a leaf (lock_rank::blocking_pool); nothing is readied
// or started under it.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/blocking_call.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro::detail {

// The bound when neither options::blocking_threads nor GORO_BLOCKING_THREADS
// sets one, and the largest allowed (Go's default thread limit).
inline constexpr unsigned default_blocking_threads = 64;
inline constexpr unsigned max_blocking_threads = 10000;

// options::blocking_threads (0: GORO_BLOCKING_THREADS, else the default),
// checked: throws goro::misuse_error naming the option or variable and the
// value when out of range or not a number (the variable is checked even when
// the option overrides it).
unsigned read_blocking_threads(unsigned option);

class blocking_pool {
  public:
    static blocking_pool& instance();

    // The bound for the calls from now on (the runtime's start).
    void set_max(unsigned n) noexcept;
    void reserve();
    void submit(blocking_task* t) noexcept;
    // Until no call is in flight (shutdown).
    void wait_idle() noexcept;
    std::uint32_t in_flight() const noexcept { return in_flight_.load(std::memory_order_seq_cst); }
    // Whether the calling thread is one of the pool's (it runs a call's
    // function, which may use the runtime while shutdown waits for it).
    static bool on_pool_thread() noexcept;

    // For tests and diagnostics.
    unsigned threads() noexcept;
    void set_keep_alive(std::int64_t ns) noexcept;

  private:
    blocking_pool() = default;
    void thread_main() noexcept;
    void finished_one() noexcept;  // in_flight_ - 1, waking wait_idle at zero

    spin_mutex mu_{lock_rank::blocking_pool};
    blocking_task* head_ GORO_GUARDED_BY(mu_) = nullptr;
    blocking_task* tail_ GORO_GUARDED_BY(mu_) = nullptr;
    unsigned threads_ GORO_GUARDED_BY(mu_) = 0;
    unsigned free_ GORO_GUARDED_BY(mu_) = 0;
    unsigned wanted_ GORO_GUARDED_BY(mu_) = 0;
    unsigned sleepers_ GORO_GUARDED_BY(mu_) = 0;  // free threads asleep on work_seq_
    unsigned max_ GORO_GUARDED_BY(mu_) = default_blocking_threads;
    std::int64_t keep_alive_ns_ GORO_GUARDED_BY(mu_) = 10'000'000'000;
    alignas(64) std::atomic<std::uint32_t> work_seq_{0};
    alignas(64) std::atomic<std::uint32_t> in_flight_{0};
    std::atomic<std::uint32_t> drainers_{0};  // threads in wait_idle
};

}  // namespace goro::detail
