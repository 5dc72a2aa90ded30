// goro/errgroup.hpp — golang.org/x/sync/errgroup: run tasks in goroutines,
// wait for all, keep the first failure.
//
//   auto [g, ctx] = goro::errgroup::with_context(parent);
//   for (auto& url : urls)
//       g.go([url, ctx = ctx]() -> std::error_code { return fetch(ctx, url); });
//   g.wait();   // rethrows the first failure
//
// A task returns void or std::error_code; a throw or a non-zero error_code is
// a failure. The first failure is kept (later ones are dropped) and cancels
// the group's context; wait() waits for every task, cancels the context, and
// rethrows the first failure — the exception itself, or std::system_error
// for an error_code. set_limit(n) caps the tasks running at once: go()
// parks while the cap is reached, try_go() returns false instead. A
// default-constructed errgroup is ready to use (Go's zero Group). errgroup is
// a cheap handle: copies share the group.
// Requires: set_limit only while no task is active (else goro::misuse_error,
// as Go panics).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>
#include <exception>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/mutex.hpp"
#include "goro/runtime.hpp"
#include "goro/source_location.hpp"
#include "goro/unit.hpp"
#include "goro/wait_group.hpp"

namespace goro {

class errgroup {
  public:
    errgroup() : s_(std::make_shared<state>()) {}

    // errgroup.WithContext: the context is cancelled by the first failure or
    // when wait() returns.
    static std::pair<errgroup, context> with_context(const context& parent) {
        errgroup g;
        auto [ctx, cancel] = with_cancel_cause(parent);
        g.s_->cancel = cancel;
        return {g, ctx};
    }

    // Runs fn in a new goroutine; parks (blocks a plain thread) while the
    // limit is reached.
    template <class F>
    void go(F&& fn, source_location where = source_location::current()) {
        detail::require_callable(fn, "goro::errgroup::go");
        chan<unit> sem = limit_chan();
        if (!sem.is_nil()) sem.send(unit{});
        start(std::forward<F>(fn), std::move(sem), where);
    }

    // Like go(), but returns false instead of waiting when the limit is reached.
    template <class F>
    bool try_go(F&& fn, source_location where = source_location::current()) {
        detail::require_callable(fn, "goro::errgroup::try_go");
        chan<unit> sem = limit_chan();
        if (!sem.is_nil() && !sem.try_send(unit{})) return false;
        start(std::forward<F>(fn), std::move(sem), where);
        return true;
    }

    // At most n tasks at once; n < 0 removes the limit.
    void set_limit(std::int64_t n);

    // Waits for every task; cancels the context; rethrows the first failure.
    void wait();

  private:
    struct state {
        wait_group wg;
        mutex mu;
        std::exception_ptr first;  // guarded by mu
        cancel_func cancel;
        chan<unit> sem;  // nil: no limit; guarded by mu for set_limit
    };

    chan<unit> limit_chan() const;

    // The task holds the group's state and the limit token it took (from
    // the limit channel in force when it started, so a later set_limit
    // cannot make it return someone else's token).
    template <class F>
    void start(F&& fn, chan<unit> sem, const source_location& where) {
        s_->wg.add(1);
        auto task = [s = s_, sem, f = std::decay_t<F>(std::forward<F>(fn))]() mutable {
            struct finish {
                state& s;
                const chan<unit>& sem;
                ~finish() { task_done(s, sem); }
            } done{*s, sem};
            try {
                if constexpr (std::is_convertible_v<std::invoke_result_t<decltype(f)&>,
                                                    std::error_code>) {
                    std::error_code ec = f();
                    if (ec) fail(*s, std::make_exception_ptr(std::system_error(ec)));
                } else {
                    f();
                }
            } catch (const detail::goroutine_unwind&) {
                throw;
            } catch (...) {
                fail(*s, std::current_exception());
            }
        };
        try {
            detail::spawn(std::move(task), where);
        } catch (...) {
            task_done(*s_, sem);
            throw;
        }
    }
    static void fail(state& s, std::exception_ptr e);
    static void task_done(state& s, const chan<unit>& sem);

    std::shared_ptr<state> s_;
};

}  // namespace goro
