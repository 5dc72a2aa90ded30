// goro/once_func.hpp — Go's sync.OnceFunc and sync.OnceValue (Go 1.21).
//
//   auto init = goro::once_func([] { load_plugins(); });
//   init();  init();                 // load_plugins runs once
//
//   auto config = goro::once_value([] { return parse_config("app.toml"); });
//   const Config& c = config();      // parsed by the first call, cached after
//
// once_func(f) returns a callable that runs f on its first call; once_value(f)
// one that runs f on its first call and returns (a const reference to) the
// value f returned on every call. The callables are cheap copyable handles:
// copies share the one state, so f runs once across all of them.
//
// - Concurrent first calls park (a goroutine frees its worker; a plain thread
//   blocks) until f has finished, as with goro::once; none of them spins.
// - If f throws, every call — the first and all later ones — rethrows that
//   same exception (the same std::exception_ptr), as Go's OnceFunc re-panics
//   with the same value. f is never run again. (goro::once differs: it
//   retries after a throw.)
// - f itself is destroyed once it has run (Go drops f too), releasing what it
//   captured; the value stays until the last copy of the callable is gone.
// - Go's OnceValues(f) is once_value of an f that returns a std::pair or a
//   std::tuple: `auto& [v, err] = get();`.
// - once_value stores std::decay_t of f's result: a reference result is
//   cached as a copy. The reference operator() returns is valid as long as
//   any copy of the callable lives.
//
// Requires: f is callable with no arguments (else a compile error) and not
// null (a null function pointer or empty std::function throws
// goro::misuse_error). f must not call its own callable, directly or through
// others: that would wait for itself; the same goroutine (or thread) calling
// it again from inside f gets goro::misuse_error naming goro::once_func or
// goro::once_value instead of a hang.
//
// Shutdown: if the goroutine running f is unwound (run() ending) or ends with
// goro::exit() inside f, f has no outcome; nothing is cached and the next
// call (one of the parked ones, say) runs f again.
//
// Memory: f's effects happen-before every call that returns or rethrows.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "goro/detail/park.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/errors.hpp"
#include "goro/once.hpp"

namespace goro {

namespace detail {

// The shared state of a once_func / once_value callable: f until it has run,
// then its outcome (a value, or the exception it threw).
//
// Invariants: outcome (value_, error_) is written only inside once_.call,
// by the one caller running f, and read only after once_.done() (acquire);
// runner_ is the parker running f while it runs, else null (relaxed: only
// the runner compares it with itself, which sees its own writes).
template <class F>
class once_cell {
  public:
    using result = std::decay_t<std::invoke_result_t<F&>>;

    explicit once_cell(F f) : f_(std::move(f)) {}

    // Runs f if no call has produced an outcome yet (parking while another
    // runs it); rethrows f's exception, or returns its value.
    decltype(auto) get(const char* who) {
        if (!once_.done()) run(who);
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<result>) return static_cast<const result&>(*value_);
    }

  private:
    void run(const char* who) {
        parker* me = current_parker();
        if (runner_.load(std::memory_order_relaxed) == me)
            throw misuse_error(std::string(who) +
                               ": f called its own callable (it would wait for itself)");
        once_.call([&] {
            runner_.store(me, std::memory_order_relaxed);
            struct clear_runner {
                std::atomic<parker*>& r;
                ~clear_runner() { r.store(nullptr, std::memory_order_relaxed); }
            } guard{runner_};
            try {
                if constexpr (std::is_void_v<result>)
                    (*f_)();
                else
                    value_.emplace((*f_)());
            } catch (const goroutine_unwind&) {
                throw;  // no outcome (shutdown, goro::exit): the next call runs f
            } catch (...) {
                error_ = std::current_exception();
            }
            f_.reset();  // it has run: release what it captured
        });
    }

    struct no_value {};
    using stored = std::conditional_t<std::is_void_v<result>, no_value, result>;

    goro::once once_;
    std::optional<F> f_;
    std::optional<stored> value_;
    std::exception_ptr error_;
    std::atomic<parker*> runner_{nullptr};
};

template <class F>
void require_once_callable(const F& f, const char* who) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>,
                  "goro::once_func / goro::once_value: f is called with no arguments");
    require_callable(f, who);
}

}  // namespace detail

// The callable once_func returns: runs f on its first call.
template <class F>
class once_function {
  public:
    // Holds f until its first call; copies share it.
    explicit once_function(F f) : cell_(std::make_shared<detail::once_cell<F>>(std::move(f))) {}
    // The first call runs f; later ones (from any copy) wait for it and
    // return, or rethrow what it threw.
    void operator()() const { cell_->get("goro::once_func"); }

  private:
    std::shared_ptr<detail::once_cell<F>> cell_;
};

// The callable once_value returns: runs f on its first call, returns its value.
template <class F>
class once_value_function {
  public:
    using value_type = typename detail::once_cell<F>::result;  // f's result

    // Holds f until its first call; copies share it.
    explicit once_value_function(F f)
        : cell_(std::make_shared<detail::once_cell<F>>(std::move(f))) {}
    // The first call runs f; every call returns its value (or rethrows
    // what it threw).
    const value_type& operator()() const { return cell_->get("goro::once_value"); }

  private:
    std::shared_ptr<detail::once_cell<F>> cell_;
};

// sync.OnceFunc. f's result, if any, is ignored (once_value keeps it).
template <class F>
once_function<std::decay_t<F>> once_func(F&& f) {
    detail::require_once_callable(f, "goro::once_func");
    return once_function<std::decay_t<F>>(std::forward<F>(f));
}

// sync.OnceValue (and OnceValues, with a pair or tuple result).
template <class F>
once_value_function<std::decay_t<F>> once_value(F&& f) {
    detail::require_once_callable(f, "goro::once_value");
    static_assert(!std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>,
                  "goro::once_value: f returns void; use goro::once_func");
    return once_value_function<std::decay_t<F>>(std::forward<F>(f));
}

}  // namespace goro
