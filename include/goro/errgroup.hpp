// goro/errgroup.hpp — golang.org/x/sync/errgroup: run tasks in goroutines,
// wait for all, keep the first failure.
//
//   auto [g, ctx] = goro::errgroup::with_context(parent);
//   for (auto& url : urls)
//       g.go([url, ctx = ctx]() -> std::error_code { return fetch(ctx, url); });
//   g.wait();   // rethrows the first failure
//
// A task takes no arguments and returns void or std::error_code (or a type
// that converts to one, such as goro::errc); a throw or a non-zero
// error_code is a failure. Any other result type is rejected at compile
// time: std::errc, int, bool or std::error_condition would otherwise be
// ignored and a failing task would count as a success. The first failure is
// kept (later ones are dropped) and cancels the group's context; wait()
// waits for every task, cancels the context, and rethrows the first failure
// — the exception itself, or std::system_error for an error_code.
// wait_error() does the same without throwing: it returns the failure as an
// errgroup::failure (empty when every task succeeded), Go's `err :=
// g.Wait()`:
//
//   if (auto err = g.wait_error()) log(err.message());  // also err.code(), err.exception()
//
// set_limit(n) caps the tasks running at once: go() parks while the cap is
// reached, try_go() returns false instead. A default-constructed errgroup is
// ready to use (Go's zero Group). errgroup is a cheap handle: copies share
// the group.
// Requires: set_limit only while no task is active (else goro::misuse_error,
// as Go panics).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
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

namespace detail {

template <class>
inline constexpr bool errgroup_bad_result = false;

// Rejects, at the go()/try_go() call, a task whose result the group would
// ignore. One message per mistake seen in practice, else a general one.
template <class F>
constexpr void check_errgroup_task() {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&>,
                  "goro::errgroup: a task is called with no arguments; capture what it needs");
    if constexpr (std::is_invocable_v<Fn&>) {
        using R = std::invoke_result_t<Fn&>;
        using B = std::remove_cvref_t<R>;
        if constexpr (std::is_void_v<R> || std::is_convertible_v<R, std::error_code>) {
            // void, std::error_code, goro::errc: understood.
        } else if constexpr (std::is_same_v<B, std::errc>) {
            static_assert(errgroup_bad_result<R>,
                          "goro::errgroup: a task must return void or std::error_code, and this "
                          "one returns std::errc, which does not convert to std::error_code (a "
                          "failure would count as success): return "
                          "std::make_error_code(std::errc::...)");
        } else if constexpr (std::is_same_v<B, std::error_condition>) {
            static_assert(errgroup_bad_result<R>,
                          "goro::errgroup: a task must return void or std::error_code, and this "
                          "one returns std::error_condition, which is for comparing errors, not "
                          "reporting them (a failure would count as success): return a "
                          "std::error_code");
        } else if constexpr (std::is_same_v<B, bool>) {
            static_assert(errgroup_bad_result<R>,
                          "goro::errgroup: a task must return void or std::error_code, and this "
                          "one returns bool, which the group would ignore (false would count as "
                          "success): return a std::error_code or throw");
        } else {
            static_assert(errgroup_bad_result<R>,
                          "goro::errgroup: a task must return void or std::error_code; its "
                          "result would be ignored (a failure would count as success): return a "
                          "std::error_code, throw, or discard the value inside the task");
        }
    }
}

}  // namespace detail

// Go's errgroup.Group (see the top of this file).
class errgroup {
  public:
    // The first failure of a group, as wait_error() returns it: empty when
    // every task succeeded; otherwise the exception a task threw, or the
    // non-zero std::error_code it returned.
    class failure {
      public:
        failure() = default;
        // A failure with a returned code or a thrown exception.
        failure(std::error_code code, std::exception_ptr ex) noexcept
            : code_(code), ex_(std::move(ex)) {}

        // True when a task failed.
        explicit operator bool() const noexcept { return ex_ != nullptr; }
        // The code a task returned, or the code() of a std::system_error it
        // threw; {} when no task failed and when the failure was another
        // exception (test the failure itself, not its code, for "failed").
        std::error_code code() const noexcept { return code_; }
        // The failure as an exception: the one thrown, or a std::system_error
        // holding the code returned; nullptr when no task failed.
        std::exception_ptr exception() const noexcept { return ex_; }
        operator std::exception_ptr() const noexcept { return ex_; }  // NOLINT: implicit
        // Throws the failure (what wait() does). Requires: a task failed.
        [[noreturn]] void rethrow() const { std::rethrow_exception(ex_); }
        // The failure's what() ("" when no task failed; "unknown exception"
        // for a thrown object not derived from std::exception).
        std::string message() const;

        friend bool operator==(const failure& f, const std::error_code& ec) noexcept {
            return f.code_ == ec;
        }
        friend bool operator==(const failure& f, errc e) noexcept { return f.code_ == e; }

      private:
        std::error_code code_;
        std::exception_ptr ex_;
    };

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
        go(spawn_options{}, std::forward<F>(fn), where);
    }
    // The same with spawn options (a stack size).
    template <class F>
    void go(spawn_options opts, F&& fn, source_location where = source_location::current()) {
        detail::check_errgroup_task<F>();
        detail::require_callable(fn, "goro::errgroup::go");
        chan<unit> sem = limit_chan();
        if (!sem.is_nil()) sem.send(unit{});
        start(std::forward<F>(fn), std::move(sem), where, opts.stack_size, "goro::errgroup::go");
    }

    // Like go(), but returns false instead of waiting when the limit is reached.
    template <class F>
    bool try_go(F&& fn, source_location where = source_location::current()) {
        detail::check_errgroup_task<F>();
        detail::require_callable(fn, "goro::errgroup::try_go");
        chan<unit> sem = limit_chan();
        if (!sem.is_nil() && !sem.try_send(unit{})) return false;
        start(std::forward<F>(fn), std::move(sem), where, 0, nullptr);
        return true;
    }

    // At most n tasks at once; n < 0 removes the limit.
    void set_limit(std::int64_t n);

    // Waits for every task; cancels the context; rethrows the first failure.
    void wait();
    // Waits for every task; cancels the context; returns the first failure
    // (empty if none) instead of throwing it. Go's `err := g.Wait()`.
    failure wait_error();

  private:
    struct state {
        wait_group wg;
        mutex mu;
        failure first;  // guarded by mu
        cancel_func cancel;
        chan<unit> sem;  // nil: no limit; guarded by mu for set_limit
    };

    chan<unit> limit_chan() const;

    // The task holds the group's state and the limit token it took (from
    // the limit channel in force when it started, so a later set_limit
    // cannot make it return someone else's token).
    template <class F>
    void start(F&& fn, chan<unit> sem, const source_location& where, std::size_t stack_size,
               const char* who) {
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
                    if (ec) fail(*s, {ec, std::make_exception_ptr(std::system_error(ec))});
                } else {
                    f();
                }
            } catch (const detail::goroutine_unwind&) {
                throw;
            } catch (const std::system_error& e) {
                fail(*s, {e.code(), std::current_exception()});
            } catch (...) {
                fail(*s, {{}, std::current_exception()});
            }
        };
        try {
            if (stack_size == 0)
                detail::spawn(std::move(task), where);
            else
                detail::spawn_sized(std::move(task), where, stack_size, who);
        } catch (...) {
            task_done(*s_, sem);
            throw;
        }
    }
    static void fail(state& s, failure f);
    static void task_done(state& s, const chan<unit>& sem);

    std::shared_ptr<state> s_;
};

}  // namespace goro
