// parking/ranked_mutex.hpp — std::mutex with a lock rank and thread-safety
// annotations, for the internal locks that may be held while the thread
// sleeps in the kernel (lifecycle, idle list, stack pool).
#pragma once

#include <mutex>

#include "goro/detail/lock_rank.hpp"
#include "goro/detail/thread_annotations.hpp"

namespace goro::detail {

class GORO_CAPABILITY("mutex") ranked_mutex {
  public:
    explicit ranked_mutex(lock_rank r) noexcept : rank_(r) {}
    void lock() GORO_ACQUIRE() {
#if defined(GORO_ASSERTS)
        rank_acquired(rank_, this);
#endif
        mu_.lock();
    }
    void unlock() GORO_RELEASE() {
#if defined(GORO_ASSERTS)
        rank_released(this);
#endif
        mu_.unlock();
    }

  private:
    std::mutex mu_;
    [[maybe_unused]] lock_rank rank_;
};

}  // namespace goro::detail
