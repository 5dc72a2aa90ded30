// goro/wait_group.hpp — sync.WaitGroup.
//
//   goro::wait_group wg;
//   for (auto& item : items) wg.go([&item] { process(item); });
//   wg.wait();  // every process() has returned
//
// add(n) before starting the work, done() when a piece finishes, wait()
// until the counter is zero. wait() parks a goroutine (or blocks a plain
// thread). Memory: everything done before done() happens-before wait()
// returns. Requires: the counter never goes below zero — add()/done() that
// would make it negative throw goro::negative_counter_error and leave the
// counter unchanged.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>
#include "goro/detail/require_callable.hpp"
#include "goro/source_location.hpp"

#include "goro/detail/spin_mutex.hpp"
#include "goro/runtime.hpp"

namespace goro {

class wait_group {
  public:
    wait_group() = default;
    wait_group(const wait_group&) = delete;
    wait_group& operator=(const wait_group&) = delete;

    void add(std::int64_t n = 1);
    void done() { add(-1); }
    void wait();

    // add(1), then runs fn in a new goroutine that calls done() when fn
    // returns (Go 1.25's WaitGroup.Go).
    template <class F>
    void go(F&& fn, goro::source_location where = goro::source_location::current()) {
        detail::require_callable(fn, "goro::wait_group::go");
        add(1);
        struct done_on_exit {
            wait_group* wg;
            ~done_on_exit() { wg->done(); }
        };
        try {
            detail::spawn(
                [this, f = std::decay_t<F>(std::forward<F>(fn))]() mutable {
                    done_on_exit guard{this};
                    f();
                },
                where);
        } catch (...) {
            done();
            throw;
        }
    }

    // The current counter (for tests and diagnostics).
    std::int64_t count() const noexcept { return counter_.load(std::memory_order_acquire); }

    struct waiter;

  private:
    std::atomic<std::int64_t> counter_{0};
    detail::spin_mutex mu_;
    waiter* head_ = nullptr;  // guarded by mu_
};

}  // namespace goro
