// goro/detail/spin_mutex.hpp — the short internal lock under channels, wait
// queues and the scheduler's bookkeeping. Held only for a few instructions
// and never across a park (except that park()'s unlock callback releases it
// after the switch). Bounded spinning, then the thread sleeps on a futex.
//
// States: 0 unlocked, 1 locked, 2 locked with possible sleepers. Each lock
// has a rank (lock_rank.hpp), checked in builds with GORO_ASSERTS.
// Not for user code: a goroutine that holds it must not block.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/lock_rank.hpp"
#include "goro/detail/thread_annotations.hpp"

namespace goro::detail {

void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected) noexcept;
void futex_wake(std::atomic<std::uint32_t>* addr, int count) noexcept;
void cpu_relax() noexcept;

class GORO_CAPABILITY("mutex") spin_mutex {
  public:
    explicit constexpr spin_mutex(lock_rank r) noexcept : rank_(r) {}

    void lock() noexcept GORO_ACQUIRE() {
#if defined(GORO_ASSERTS)
        rank_acquired(rank_, this);
#endif
        std::uint32_t unlocked = 0;
        if (state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) [[likely]]
            return;
        lock_slow();
    }
    bool try_lock() noexcept GORO_TRY_ACQUIRE(true) {
        std::uint32_t unlocked = 0;
        bool got = state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                                  std::memory_order_relaxed);
#if defined(GORO_ASSERTS)
        if (got) rank_acquired(rank_, this);
#endif
        return got;
    }
    void unlock() noexcept GORO_RELEASE() {
#if defined(GORO_ASSERTS)
        rank_released(this);
#endif
        // One exchange, and nothing of the lock read after it: the next
        // holder may free it. (A plain store, then a read of a flag, was a
        // use-after-free: docs/performance.md, seventh session.)
        if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
            futex_wake(&state_, 1);
    }

  private:
    void lock_slow() noexcept {
        // Bounded spinning with exponential backoff (1, 2, 4 .. 32 pauses
        // between looks, ~300 pauses in all): covers a critical section of a
        // few hundred ns without hammering the holder's cache line. A holder
        // preempted by the OS is waited out on the futex instead.
        for (int i = 0; i < 10; ++i) {
            for (int k = 0; k < (1 << (i < 5 ? i : 5)); ++k) cpu_relax();
            if (state_.load(std::memory_order_relaxed) == 0) {
                std::uint32_t unlocked = 0;
                if (state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                                   std::memory_order_relaxed))
                    return;
            }
        }
        while (state_.exchange(2, std::memory_order_acquire) != 0) futex_wait(&state_, 2);
    }
    std::atomic<std::uint32_t> state_{0};
    [[maybe_unused]] lock_rank rank_;
};

// std::lock_guard for goro's internal locks, visible to the thread-safety
// analysis.
template <class M>
class GORO_SCOPED_CAPABILITY lock_scope {
  public:
    explicit lock_scope(M& m) noexcept GORO_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~lock_scope() GORO_RELEASE() { m_.unlock(); }
    lock_scope(const lock_scope&) = delete;
    lock_scope& operator=(const lock_scope&) = delete;

  private:
    M& m_;
};
template <class M>
lock_scope(M&) -> lock_scope<M>;

}  // namespace goro::detail
