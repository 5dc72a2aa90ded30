// goro/context.hpp — Go's context package: cancellation, deadlines and
// request-scoped values, shared between goroutines.
//
//   auto [ctx, cancel] = goro::with_timeout(goro::background(), 2s);
//   goro::select(goro::recv_case(results, on_result),
//                goro::recv_case(ctx.done(), [&](auto) { give_up(ctx.err()); }));
//   cancel();   // idempotent; always call it to release the context early
//
// A context is a cheap copyable handle, safe to share between goroutines and
// threads. Cancelling a parent cancels every descendant (done() closes, err()
// becomes goro::errc::canceled or goro::errc::deadline_exceeded); a child
// never cancels its parent; a child's deadline never outlives its parent's.
// Cancelling a context detaches it from its parent, and a child that nobody
// references any more is dropped from its parent's list too, so short-lived
// children of a long-lived parent do not accumulate. What such a child
// leaves behind still works as in Go: a copy of its done() channel is
// closed, a stop_token of it is stopped and an after-func registered on it
// runs when an ancestor is cancelled or the child's own deadline passes.
//
// std::stop_token interop: ctx.stop_token() is requested when ctx is
// cancelled; goro::with_stop_token(parent, token) is cancelled when the
// token's stop is requested (while the returned context or its cancel
// function is referenced: a dropped one stops listening to the token).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <system_error>
#include <utility>

#include "goro/chan.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/errors.hpp"
#include "goro/runtime.hpp"
#include "goro/unit.hpp"

namespace goro {

namespace detail {
struct context_node;
}

// A typed key for with_value / value. Keys compare by identity: make one
// object per key (e.g. a static or global) and use it everywhere.
template <class T>
class context_key {
  public:
    constexpr context_key() = default;
    context_key(const context_key&) = delete;
    context_key& operator=(const context_key&) = delete;
};

// Why a context was cancelled (context.Cause): the cause given to a
// with_cancel_cause cancel function, else the context's err(). Empty while
// the context is live. Converts to std::exception_ptr (rethrowable) and to
// std::error_code, and compares equal to an error_code or a goro::errc.
class cancel_cause {
  public:
    cancel_cause() = default;
    // A cause with code ec and exception ex (either may be empty); true when
    // either is set.
    cancel_cause(std::error_code ec, std::exception_ptr ex) : ec_(ec), ex_(std::move(ex)) {}
    explicit operator bool() const noexcept { return ec_ || ex_; }
    // The cause as an error code: the code given, the code of a
    // std::system_error given, else the context's err().
    std::error_code code() const noexcept { return ec_; }
    // The cause as an exception (a std::system_error for a code).
    std::exception_ptr exception() const noexcept { return ex_; }
    operator std::exception_ptr() const noexcept { return ex_; }  // NOLINT: implicit
    operator std::error_code() const noexcept { return ec_; }     // NOLINT: implicit
    [[noreturn]] void rethrow() const { std::rethrow_exception(ex_); }
    friend bool operator==(const cancel_cause& c, const std::error_code& ec) noexcept {
        return c.ec_ == ec;
    }
    friend bool operator==(const cancel_cause& c, errc e) noexcept { return c.ec_ == e; }

  private:
    std::error_code ec_;
    std::exception_ptr ex_;
};

// A context (Go's context.Context): a cheap copyable handle to a node of
// the context tree, safe to share between goroutines.
class context {
  public:
    // The background context (never cancelled, no values, no deadline).
    context() = default;

    // Closed when the context is cancelled; the nil channel for contexts that
    // can never be cancelled (background, todo, without_cancel).
    recv_chan<unit> done() const;
    // {} while live; errc::canceled or errc::deadline_exceeded after.
    std::error_code err() const;
    std::optional<clock::time_point> deadline() const;
    // The value stored under key here or in an ancestor, or nullptr.
    template <class T>
    const T* value(const context_key<T>& key) const {
        return static_cast<const T*>(find_value(&key));
    }
    // A stop_token requested when this context is cancelled (one that never
    // stops for a context that cannot be cancelled).
    std::stop_token stop_token() const;

    friend bool operator==(const context& a, const context& b) noexcept { return a.n_ == b.n_; }

    // For goro's own code: the handle of a node, and the node.
    explicit context(std::shared_ptr<detail::context_node> n) : n_(std::move(n)) {}
    const std::shared_ptr<detail::context_node>& node() const noexcept { return n_; }

  private:
    const void* find_value(const void* key) const;
    std::shared_ptr<detail::context_node> n_;
};

// Cancels its context (and every descendant). Copyable, idempotent, safe from
// any thread. The cause overloads set goro::cause(ctx) (first cancel wins).
class cancel_func {
  public:
    cancel_func() = default;
    // For goro's own code: the cancel function of a node.
    explicit cancel_func(std::shared_ptr<detail::context_node> n) : n_(std::move(n)) {}
    // Cancels with errc::canceled (the first cancel wins), or with the cause
    // given, which goro::cause(ctx) returns.
    void operator()() const;
    void operator()(std::exception_ptr cause) const;
    void operator()(std::error_code cause) const;
    void operator()(const cancel_cause& cause) const;  // e.g. another context's cause

  private:
    std::shared_ptr<detail::context_node> n_;
};

// The contexts: background() and todo() are never cancelled; with_cancel's
// is cancelled by its cancel_func (with_cancel_cause's with a cause),
// with_deadline's and with_timeout's also when the deadline passes; each
// also when its parent is.
context background();
context todo();
std::pair<context, cancel_func> with_cancel(const context& parent);
std::pair<context, cancel_func> with_cancel_cause(const context& parent);
std::pair<context, cancel_func> with_deadline(const context& parent, clock::time_point d);
template <class Rep, class Period>
std::pair<context, cancel_func> with_timeout(const context& parent,
                                             std::chrono::duration<Rep, Period> timeout) {
    return with_deadline(parent, detail::saturating_deadline(timeout));
}
// context.WithDeadlineCause / WithTimeoutCause (Go 1.21): with_deadline, and
// when the deadline passes, goro::cause(ctx) is `cause` (err() is still
// errc::deadline_exceeded). The cancel function does not set the cause
// (cause(ctx) is then errc::canceled), nor does a parent's cancellation or a
// sooner deadline of the parent's (the child is then a plain with_cancel, as
// in Go). An empty cause (a null exception_ptr, a zero error_code) means
// errc::deadline_exceeded. An exception cause that is not a
// std::system_error has code() errc::deadline_exceeded.
std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    std::exception_ptr cause);
std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    std::error_code cause);
std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    const cancel_cause& cause);
template <class Rep, class Period, class Cause>
std::pair<context, cancel_func> with_timeout_cause(const context& parent,
                                                   std::chrono::duration<Rep, Period> timeout,
                                                   Cause&& cause) {
    return with_deadline_cause(parent, detail::saturating_deadline(timeout),
                               std::forward<Cause>(cause));
}
// Values and deadline-free, cancellation-free view of parent (its values only).
context without_cancel(const context& parent);
// A context cancelled when `token` has its stop requested (or parent is).
std::pair<context, cancel_func> with_stop_token(const context& parent, std::stop_token token);

namespace detail {
context with_value_erased(const context& parent, const void* key, std::shared_ptr<const void> v);
}

template <class T, class U>
// A child of parent carrying value (a T) under key; value(key) finds it.
context with_value(const context& parent, const context_key<T>& key, U&& value) {
    return detail::with_value_erased(parent, &key,
                                     std::make_shared<const T>(std::forward<U>(value)));
}

// Why ctx was cancelled (Go's context.Cause); empty while it is live.
cancel_cause cause(const context& ctx);

// context.AfterFunc: runs fn in its own goroutine once ctx is cancelled (at
// once if it already is). The returned function stops that: it returns true
// if it prevented fn from being started.
class after_func_stop {
  public:
    after_func_stop() = default;
    // For goro's own code: the stop function f, and calling it.
    explicit after_func_stop(std::function<bool()> f) : f_(std::move(f)) {}
    bool operator()() const { return f_ ? f_() : false; }

  private:
    std::function<bool()> f_;
};
namespace detail {
after_func_stop context_after_func_erased(const context& ctx, std::function<void()> fn);
}
template <class F>
// Runs fn in its own goroutine once ctx is cancelled (see after_func_stop).
after_func_stop context_after_func(const context& ctx, F&& fn) {
    detail::require_callable(fn, "goro::context_after_func");
    // Shared so that std::function can copy it: fn itself may be move-only.
    auto shared = std::make_shared<std::decay_t<F>>(std::forward<F>(fn));
    return detail::context_after_func_erased(ctx, [shared] { (*shared)(); });
}

}  // namespace goro
