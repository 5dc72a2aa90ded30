// goro/once.hpp — sync.Once.
//
//   static goro::once init;
//   init.call([] { load_config(); });   // exactly once; others wait for it
//
// call(fn) runs fn if no call has completed yet; concurrent callers park
// until it finishes. Differs from Go: if fn throws, the exception propagates
// and the once stays not done, so a later call tries again (like
// std::call_once; Go's Once counts a panicking call as done).
// Memory: fn's effects happen-before every call() that returns.
#pragma once

#include <atomic>
#include <mutex>
#include <utility>

#include "goro/mutex.hpp"

namespace goro {

class once {
  public:
    template <class F>
    void call(F&& fn) {
        if (done_.load(std::memory_order_acquire)) return;
        std::lock_guard lk(m_);
        if (done_.load(std::memory_order_relaxed)) return;
        std::forward<F>(fn)();
        done_.store(true, std::memory_order_release);
    }
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }

  private:
    std::atomic<bool> done_{false};
    mutex m_;
};

}  // namespace goro
