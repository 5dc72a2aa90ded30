// goro/wait_group.hpp — sync.WaitGroup.
//
//   goro::wait_group wg;
//   for (auto& item : items) wg.go([&item] { process(item); });
//   wg.wait();  // every process() has returned
//
// add(n) before starting the work, done() when a piece finishes, wait()
// until the counter is zero. wait() parks a goroutine (or blocks a plain
// thread). Memory: everything done before done() happens-before wait()
// returns. Lifetime: like std::latch, it may be destroyed as soon as wait()
// has returned — done() touches nothing of it after the decrement that takes
// the counter to zero, unless a waiter is still blocked in wait().
// At shutdown, wait() does not unwind: it waits until the counter is zero
// (the goroutines it waits for are being unwound too, and their done()
// calls still use this wait_group) and returns; the goroutine unwinds at its
// next blocking call. Only if nothing is left that could call done() is it
// unwound from wait(). A wait_group destroyed by an exception's unwinding
// after go() (a throw between go() and wait()) first waits as wait() does.
// Requires: the counter never goes below zero — add()/done() that would
// make it negative throw goro::negative_counter_error and leave the counter
// unchanged; it stays below 2^31 (goro::misuse_error otherwise).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <atomic>
#include <cstdint>
#include <utility>

#include "goro/detail/intrusive_list.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/runtime.hpp"
#include "goro/source_location.hpp"

namespace goro {

namespace detail {
struct waiter;
}

// Go's sync.WaitGroup (see the top of this file).
class wait_group {
  public:
    wait_group() = default;
    // Destroyed by an exception's unwinding while its counter is not zero
    // after go() started goroutines on it (a throw between go() and wait()),
    // it waits for the counter to reach zero first, as wait() does: their
    // done() calls would touch freed memory otherwise. It does not wait in a
    // normal scope exit, nor if only add() counted (an add(n) up front that a
    // throw left unbalanced: nothing would take those counts back), nor with
    // no runtime running.
    ~wait_group();
    wait_group(const wait_group&) = delete;
    wait_group& operator=(const wait_group&) = delete;

    // Adds n to the counter (done() adds -1); wait() parks until it is zero.
    // Throws negative_counter_error if it would go below zero.
    void add(std::int64_t n = 1);
    void done() { add(-1); }
    void wait();

    // add(1), then runs fn in a new goroutine that calls done() when fn
    // returns (Go 1.25's WaitGroup.Go).
    template <class F>
    void go(F&& fn, goro::source_location where = goro::source_location::current()) {
        detail::require_callable(fn, "goro::wait_group::go");
        spawned_.store(true, std::memory_order_relaxed);
        add(1);
        try {
            detail::spawn(task(std::forward<F>(fn)), where);
        } catch (...) {
            done();
            throw;
        }
    }
    // The same with spawn options (a stack size, goro::spawn_options).
    template <class F>
    void go(spawn_options opts, F&& fn,
            goro::source_location where = goro::source_location::current()) {
        if (opts.stack_size == 0) return go(std::forward<F>(fn), where);
        detail::require_callable(fn, "goro::wait_group::go");
        spawned_.store(true, std::memory_order_relaxed);
        add(1);
        try {
            detail::spawn_sized(task(std::forward<F>(fn)), where, opts.stack_size,
                                "goro::wait_group::go");
        } catch (...) {
            done();
            throw;
        }
    }

    // The current counter (for tests and diagnostics).
    std::int64_t count() const noexcept {
        return static_cast<std::int32_t>(state_.load(std::memory_order_acquire) >> 32);
    }

  private:
    bool own_wake_ups(std::uint64_t due) noexcept;
    std::uint64_t take_over_wake_ups(std::uint64_t due) noexcept;
    void wake_first(std::uint64_t due) noexcept;
    // fn, then done() however fn ends.
    template <class F>
    auto task(F&& fn) {
        struct done_on_exit {
            wait_group* wg;
            ~done_on_exit() { wg->done(); }
        };
        return [this, f = std::decay_t<F>(std::forward<F>(fn))]() mutable {
            done_on_exit guard{this};
            f();
        };
    }

    // Counter in the high 32 bits (signed), queued waiters in the low 32.
    // The waiter count changes only under the wait lock, together with q_.
    std::atomic<std::uint64_t> state_{0};
    detail::intrusive_list<detail::waiter> q_;  // guarded by the wait lock
    std::atomic<bool> spawned_{false};          // go() has been called (the destructor)
};

}  // namespace goro
