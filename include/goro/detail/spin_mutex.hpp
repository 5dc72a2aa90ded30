// goro/detail/spin_mutex.hpp — the short internal lock under channels, wait
// queues and the scheduler's bookkeeping. Held only for a few instructions
// and never across a park (except that park()'s unlock callback releases it
// after the switch). Bounded spinning, then the thread sleeps on a futex.
//
// States: 0 unlocked, 1 locked, 2 locked with possible sleepers.
// Not for user code: a goroutine that holds it must not block.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected) noexcept;
void futex_wake(std::atomic<std::uint32_t>* addr, int count) noexcept;
void cpu_relax() noexcept;

class spin_mutex {
  public:
    void lock() noexcept {
        std::uint32_t unlocked = 0;
        if (state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) [[likely]]
            return;
        lock_slow();
    }
    bool try_lock() noexcept {
        std::uint32_t unlocked = 0;
        return state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                              std::memory_order_relaxed);
    }
    void unlock() noexcept {
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
            if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
        }
        while (state_.exchange(2, std::memory_order_acquire) != 0) futex_wait(&state_, 2);
    }
    std::atomic<std::uint32_t> state_{0};
};

}  // namespace goro::detail
