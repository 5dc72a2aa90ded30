// goro/blocking.hpp — running a blocking call (file I/O, getaddrinfo, a
// legacy library) without holding up a worker thread.
//
//   std::string text = goro::blocking([&] { return read_whole_file(path); });
//   addrinfo* ai = goro::blocking([&] { return resolve(host); });
//   goro::blocking(ctx, [=] { slow_fsync(fd); });   // gives up waiting when ctx is done
//
// From a goroutine, blocking(fn) runs fn on a thread of goro's blocking pool
// and parks the goroutine (wait reason "blocking call" in
// goro::dump_goroutines) until fn returns; the worker runs other goroutines
// meanwhile. It returns what fn returned — by value, any move-constructible
// type or void; a reference result is copied — or rethrows what fn threw,
// with its type. From a plain OS thread (one not running a goroutine, which
// includes the pool's own threads) fn simply runs inline.
//
// The pool: at most options::blocking_threads threads run calls at once
// (default 64; 0 takes the GORO_BLOCKING_THREADS environment variable, else
// the default; 1..10000). Threads are started as calls need them and exit
// after 10 s idle; calls beyond the bound wait in FIFO order. Go has no such
// bound (a goroutine in a system call holds its own OS thread, up to 10000
// of them); the bound keeps a burst of slow calls from creating thousands
// of threads, at the price that calls which wait on each other can deadlock
// once the bound is reached: do not make a blocking call wait for another.
//
// fn runs on another OS thread: thread-locals are that thread's, and goro
// calls made inside fn behave as on any plain thread (a channel send blocks
// the pool thread). Requires: fn callable with no arguments, its result
// type void or move-constructible; a null function pointer or empty
// std::function throws goro::misuse_error. If the pool has no thread and
// cannot start one, blocking throws std::system_error and fn does not run.
//
// Shutdown: a blocking call cannot be interrupted, so run() does not return
// while a call is in flight (nor while one is queued): it waits for fn like
// for any goroutine. The caller of blocking(fn) is not unwound while fn runs:
// blocking returns normally, and the goroutine unwinds at its next blocking
// goro call. A fn that never returns keeps run() from returning.
//
// blocking(ctx, fn): the same, but the wait ends early when ctx is done —
// blocking then throws std::system_error carrying ctx.err() (already done on
// entry: it throws at once and fn never runs). fn is decay-copied first,
// since it may outlive the call: once started it keeps running on the pool
// and its result is discarded; if it had not started yet it never runs.
// If fn returns before the cancellation is seen, its result is returned. At
// shutdown the caller unwinds like any cancellable wait; run() still waits
// for fn. On a plain thread fn runs inline (it cannot be interrupted there).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <functional>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include "goro/context.hpp"
#include "goro/detail/blocking_call.hpp"
#include "goro/detail/park.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/runtime.hpp"

namespace goro {

namespace detail {
// What blocking(fn) returns for an fn of type F (as invoked).
template <class F>
using blocking_result_t = std::remove_cvref_t<std::invoke_result_t<F>>;

template <class F>
constexpr void check_blocking_fn() {
    static_assert(std::is_invocable_v<F>, "goro::blocking: fn must be callable with no arguments");
    using R = blocking_result_t<F>;
    static_assert(std::is_void_v<R> || std::is_move_constructible_v<R>,
                  "goro::blocking: fn's result type must be void or move-constructible (it is "
                  "returned by value)");
}
}  // namespace detail

template <class F>
// Runs fn on the blocking pool and parks until it returns (see the top of
// this file); returns its result or rethrows its exception.
detail::blocking_result_t<F> blocking(F&& fn) {
    detail::check_blocking_fn<F>();
    using R = detail::blocking_result_t<F>;
    detail::require_callable(fn, "goro::blocking");
    if (!in_goroutine()) return static_cast<R>(std::invoke(std::forward<F>(fn)));
    if (detail::must_unwind_now()) detail::throw_unwind();
    detail::frame_call<F, R> call(fn);
    detail::blocking_reserve();
    detail::blocking_park_pinned(&call);
    return call.out.take();
}

template <class F>
// As blocking(fn), but stops waiting when ctx is done (see the top of
// this file).
detail::blocking_result_t<std::decay_t<F>> blocking(const context& ctx, F&& fn) {
    using D = std::decay_t<F>;
    static_assert(std::is_constructible_v<D, F>,
                  "goro::blocking(ctx, fn): fn must be copyable or movable (it is decay-copied)");
    detail::check_blocking_fn<D>();
    using R = detail::blocking_result_t<D>;
    detail::require_callable(fn, "goro::blocking");
    if (auto e = ctx.err()) throw std::system_error(e, "goro::blocking");
    if (!in_goroutine()) return static_cast<R>(std::invoke(std::forward<F>(fn)));
    if (detail::must_unwind_now()) detail::throw_unwind();
    auto call = std::make_shared<detail::shared_call<D, R>>(std::forward<F>(fn));
    switch (detail::run_shared_call(ctx, call)) {
        case detail::call_end::done:
            break;
        case detail::call_end::cancelled: {
            std::error_code e = ctx.err();
            throw std::system_error(e ? e : make_error_code(errc::canceled), "goro::blocking");
        }
        case detail::call_end::unwind:
            detail::throw_unwind();
    }
    return call->out.take();
}

}  // namespace goro
