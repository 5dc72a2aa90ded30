// goro/select.hpp — Go's select statement.
//
//   std::size_t i = goro::select(
//       goro::recv_case(in, [](std::optional<int> v) { ... }),  // nullopt: in is closed
//       goro::send_case(out, value, [] { ... }),
//       goro::recv_case(goro::after(5s), [](auto) { ... }),
//       goro::default_case([] { ... }));                        // optional: never block
//
// Runs exactly one case and returns its index (its position in the argument
// list). Among several ready cases one is chosen uniformly at random. Cases
// on nil channels are never ready. Without a default, select parks until a
// case is ready; with no cases at all it blocks forever. Handlers are
// optional; a recv handler takes std::optional<T> (nullopt: closed), or T
// (a closed channel gives T{}, as Go's zero value), or nothing; a send or
// default handler takes nothing. A send case moves its value only if it is
// chosen: `send_case(ch, std::move(v))` leaves v untouched otherwise, and
// `send_case(ch, v)` sends a copy. A chosen send on a closed channel throws
// goro::closed_channel_error, as in Go.
//
// Dynamic select over a runtime-sized set (Go's reflect.Select):
//   std::vector<goro::select_case<int>> cases;
//   for (auto& ch : inputs) cases.push_back(goro::select_case<int>::recv(ch));
//   std::size_t i = goro::select(std::span(cases));      // blocks
//   std::optional<int>& v = cases[i].value();           // nullopt: closed
//   auto j = goro::try_select(std::span(cases));         // nullopt if none ready
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "goro/chan.hpp"
#include "goro/detail/select_core.hpp"

namespace goro {

namespace detail {

struct no_handler {};

template <class T, class F>
struct recv_case_t {
    chan_core* core;
    F fn;
    alignas(T) unsigned char storage[sizeof(T)];

    void fill(select_op& op) { op = select_op{core, storage, false, false}; }
    void finish(const select_op& op) {
        std::optional<T> v;
        if (op.received) {
            T* p = std::launder(reinterpret_cast<T*>(storage));
            v.emplace(std::move(*p));
            p->~T();
        }
        if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
            std::invoke(fn, std::move(v));
        } else if constexpr (std::is_invocable_v<F&, T>) {
            // Go's `case v := <-ch`: a closed channel gives the zero value.
            static_assert(std::is_default_constructible_v<T>,
                          "a recv_case handler taking T needs a default-constructible T "
                          "(for a closed channel); take std::optional<T> instead");
            std::invoke(fn, v ? std::move(*v) : T{});
        } else if constexpr (std::is_invocable_v<F&>) {
            std::invoke(fn);
        } else {
            static_assert(std::is_same_v<F, no_handler>,
                          "recv_case handler must take std::optional<T>, T, or nothing");
        }
    }
};

template <class T, class F>
struct send_case_t {
    chan_core* core;
    T* value;               // the caller's value (moved from only if chosen)
    std::optional<T> copy;  // or our own copy of it
    F fn;

    void fill(select_op& op) { op = select_op{core, copy ? &*copy : value, true, false}; }
    void finish(const select_op&) {
        if constexpr (std::is_invocable_v<F&>)
            std::invoke(fn);
        else
            static_assert(std::is_same_v<F, no_handler>, "send_case handler must take nothing");
    }
};

template <class F>
struct default_case_t {
    F fn;
    void finish() {
        if constexpr (std::is_invocable_v<F&>)
            std::invoke(fn);
        else
            static_assert(std::is_same_v<F, no_handler>, "default_case handler must take nothing");
    }
};

template <class C>
struct is_default_case : std::false_type {};
template <class F>
struct is_default_case<default_case_t<F>> : std::true_type {};

}  // namespace detail

// A receive from ch (chan<T> or recv_chan<T>).
template <class T, class F = detail::no_handler>
detail::recv_case_t<T, std::decay_t<F>> recv_case(const detail::chan_handle<T>& ch, F&& fn = {}) {
    return {ch.core(), std::forward<F>(fn), {}};
}

// A send of v to ch (chan<T> or send_chan<T>); v is moved only if chosen.
template <class T, class F = detail::no_handler>
detail::send_case_t<T, std::decay_t<F>> send_case(const detail::chan_handle<T>& ch,
                                                  std::type_identity_t<T>&& v, F&& fn = {}) {
    return {ch.core(), &v, std::nullopt, std::forward<F>(fn)};
}
// A send of a copy of v.
template <class T, class F = detail::no_handler>
detail::send_case_t<T, std::decay_t<F>> send_case(const detail::chan_handle<T>& ch,
                                                  const std::type_identity_t<T>& v, F&& fn = {}) {
    return {ch.core(), nullptr, std::optional<T>(v), std::forward<F>(fn)};
}

// Makes the select non-blocking: runs when no other case is ready.
template <class F = detail::no_handler>
detail::default_case_t<std::decay_t<F>> default_case(F&& fn = {}) {
    return {std::forward<F>(fn)};
}

template <class... Cases>
// Go's select: runs one ready case (chosen at random among the ready ones)
// and returns its index; parks until one is ready unless a default_case
// is given (see the top of this file).
std::size_t select(Cases&&... cases) {
    constexpr std::size_t n = sizeof...(Cases);
    constexpr std::size_t defaults =
        (std::size_t{0} + ... + detail::is_default_case<std::decay_t<Cases>>::value);
    static_assert(defaults <= 1, "goro::select: at most one default_case");
    constexpr std::size_t nops = n - defaults;

    detail::select_op ops[nops > 0 ? nops : 1];
    std::size_t arg_of_op[nops > 0 ? nops : 1] = {};
    std::size_t default_arg = n;
    {
        std::size_t arg = 0, k = 0;
        auto fill = [&](auto& c) {
            if constexpr (detail::is_default_case<std::decay_t<decltype(c)>>::value) {
                default_arg = arg;
            } else {
                c.fill(ops[k]);
                arg_of_op[k++] = arg;
            }
            ++arg;
        };
        (fill(cases), ...);
        (void)fill;  // unused by an empty select
    }
    std::ptrdiff_t r = detail::select_impl(ops, nops, defaults > 0);
    const std::size_t chosen = r < 0 ? default_arg : arg_of_op[r];
    {
        std::size_t arg = 0, k = 0;
        auto finish = [&](auto& c) {
            if constexpr (detail::is_default_case<std::decay_t<decltype(c)>>::value) {
                if (arg == chosen) c.finish();
            } else {
                if (arg == chosen) c.finish(ops[k]);
                ++k;
            }
            ++arg;
        };
        (finish(cases), ...);
        (void)finish;
    }
    return chosen;
}

// One case of a dynamic select: a receive from or a send to a chan<T>.
template <class T>
class select_case {
  public:
    // A receive from, or a send of v to, a chan<T> (or one of its views).
    static select_case recv(const detail::chan_handle<T>& ch) {
        select_case c;
        c.core_ = ch.core();
        c.is_send_ = false;
        return c;
    }
    static select_case send(const detail::chan_handle<T>& ch, T v) {
        select_case c;
        c.core_ = ch.core();
        c.is_send_ = true;
        c.value_.emplace(std::move(v));
        return c;
    }

    // Whether this is a send case.
    bool is_send() const noexcept { return is_send_; }
    // Recv case after it ran: the value, or nullopt if the channel was closed.
    // Send case: the value still to send (emptied once sent).
    std::optional<T>& value() noexcept { return value_; }
    const std::optional<T>& value() const noexcept { return value_; }

    // Internal: used by select(span).
    void fill(detail::select_op& op) {
        if (is_send_) {
            op = detail::select_op{value_ ? core_ : nullptr, value_ ? &*value_ : nullptr, true,
                                   false};
        } else {
            value_.reset();
            op = detail::select_op{core_, storage_, false, false};
        }
    }
    void finish(const detail::select_op& op) {
        if (is_send_) {
            value_.reset();
        } else if (op.received) {
            T* p = std::launder(reinterpret_cast<T*>(storage_));
            value_.emplace(std::move(*p));
            p->~T();
        }
    }

  private:
    detail::chan_core* core_ = nullptr;
    bool is_send_ = false;
    std::optional<T> value_;
    alignas(T) unsigned char storage_[sizeof(T)];
};

namespace detail {
template <class T>
std::ptrdiff_t select_span(std::span<select_case<T>> cases, bool has_default) {
    small_ops ops(cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) cases[i].fill(ops.data[i]);
    std::ptrdiff_t r = select_impl(ops.data, cases.size(), has_default);
    if (r >= 0) cases[static_cast<std::size_t>(r)].finish(ops.data[r]);
    return r;
}
}  // namespace detail

// Blocks until one case runs; returns its index. A send case whose value was
// already sent (value() empty) is skipped, like a nil channel.
template <class T>
std::size_t select(std::span<select_case<T>> cases) {
    return static_cast<std::size_t>(detail::select_span(cases, false));
}
template <class T>
std::size_t select(std::vector<select_case<T>>& cases) {
    return select(std::span<select_case<T>>(cases));
}
// Runs a ready case if there is one (select with default).
template <class T>
std::optional<std::size_t> try_select(std::span<select_case<T>> cases) {
    std::ptrdiff_t r = detail::select_span(cases, true);
    if (r < 0) return std::nullopt;
    return static_cast<std::size_t>(r);
}
template <class T>
std::optional<std::size_t> try_select(std::vector<select_case<T>>& cases) {
    return try_select(std::span<select_case<T>>(cases));
}

}  // namespace goro
