// goro/once.hpp — sync.Once.
//
//   static goro::once init;
//   init.call([] { load_config(); });   // exactly once; others wait for it
//
// call(fn) runs fn if no call has completed yet; concurrent callers park
// until it finishes. Differs from Go: if fn throws, the exception propagates
// and the once stays not done, so a later (or a waiting) call tries again
// (like std::call_once; Go's Once counts a panicking call as done).
// fn calling call() on the same once (on the same goroutine or thread)
// would wait for itself (Go deadlocks): it throws goro::misuse_error naming
// goro::once::call instead, as once_func does.
// Memory: fn's effects happen-before every call() that returns.
// Lifetime: may be destroyed as soon as a call() has returned and no other
// call is in progress: the call that ran fn marks it done with one store,
// its last touch unless callers are parked waiting.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <atomic>
#include <cstdint>
#include <utility>

#include "goro/detail/intrusive_list.hpp"

namespace goro {

namespace detail {
struct waiter;
}

// Go's sync.Once (see the top of this file).
class once {
  public:
    once() = default;
    once(const once&) = delete;
    once& operator=(const once&) = delete;

    template <class F>
    // Runs fn if no call has completed; concurrent callers wait for it. A
    // call that throws does not count: the next call runs its fn.
    void call(F&& fn) {
        if (state_.load(std::memory_order_acquire) == done_state) return;
        if (!begin()) return;
        try {
            std::forward<F>(fn)();
        } catch (...) {
            finish(false);
            throw;
        }
        finish(true);
    }
    // Whether a call has completed.
    bool done() const noexcept { return state_.load(std::memory_order_acquire) == done_state; }

  private:
    static constexpr std::uint32_t idle = 0, running = 1, running_waited = 2, done_state = 3;
    // True: the caller runs fn (state running). False: done meanwhile.
    bool begin();
    void finish(bool ok) noexcept;
    std::atomic<std::uint32_t> state_{idle};
    // The parker running fn while it runs, else null: only the runner
    // compares it with itself (relaxed), to refuse a call from inside fn.
    std::atomic<const void*> runner_{nullptr};
    detail::intrusive_list<detail::waiter> q_;  // guarded by the wait lock
};

}  // namespace goro
