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
//
// Mixed select: a runtime-sized group of cases among fixed cases of other
// element types, in ONE select (Go's reflect.Select over mixed cases):
//   std::vector<goro::chan<Msg>> subs = ...;
//   goro::select_result r = goro::select(
//       goro::recv_any(subs, [](std::size_t j, std::optional<Msg> m) { ... }),  // subs[j]
//       goro::recv_case(ctx.done(), [](auto) { ... }),
//       goro::recv_case(tick.c(), [](goro::clock::time_point) { ... }),
//       goro::default_case());                                                 // optional
//   r.index: the argument that ran (as above); r.element: which element of
//   a group (select_result::none for a fixed case or the default).
// recv_any(range, fn) receives from any channel of a forward range of
// chan<T> / recv_chan<T>; dynamic_cases(cases, fn) embeds a vector or span
// of select_case<T> (receives and sends) and fn(j) reads cases[j].value().
// Every case of every group counts as one case for the random choice: with
// k ready cases in all, each runs with probability 1/k. A select with a
// group returns select_result (it converts to the index); without one,
// std::size_t as before.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
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
    static_assert(std::is_copy_constructible_v<T>,
                  "goro::send_case: T is move-only and v is an lvalue; move it: "
                  "send_case(ch, std::move(v)) (v is moved from only if the case is chosen)");
    if constexpr (std::is_copy_constructible_v<T>)
        return {ch.core(), nullptr, std::optional<T>(v), std::forward<F>(fn)};
    else
        return {ch.core(), nullptr, std::nullopt, std::forward<F>(fn)};
}

// Makes the select non-blocking: runs when no other case is ready.
template <class F = detail::no_handler>
detail::default_case_t<std::decay_t<F>> default_case(F&& fn = {}) {
    return {std::forward<F>(fn)};
}

template <class T>
class select_case;

// The outcome of a select with a case group (recv_any, dynamic_cases): the
// argument that ran and, for a group, which of its elements.
struct select_result {
    // `element` when a fixed case or the default ran.
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    std::size_t index = 0;       // position of the case (argument) that ran
    std::size_t element = none;  // a group's element that ran; none otherwise
    // The index, so that `std::size_t i = goro::select(...)` and
    // `switch (goro::select(...))` read as with fixed cases only.
    constexpr operator std::size_t() const noexcept { return index; }  // NOLINT: implicit
};

namespace detail {

template <class D>
inline constexpr bool dependent_false = false;

// Something with a c() giving a channel (goro::ticker, goro::timer): not a
// channel itself.
template <class X>
concept has_chan_accessor = requires(const X& x) {
    { x.c().core() } -> std::same_as<chan_core*>;
};

// recv_any(range, fn): one receive per element of a range of chan<T> /
// recv_chan<T>. Only one case of a select ever receives, so the group's
// cases share one slot for the value.
template <class R, class T, class F>
struct recv_any_t {
    R range;  // a reference to the caller's range, or the range moved in
    F fn;
    alignas(T) unsigned char storage[sizeof(T)];

    std::size_t count() const { return static_cast<std::size_t>(std::ranges::distance(range)); }
    void fill(select_op* ops, std::size_t n) {
        std::size_t k = 0;
        for (auto it = std::ranges::begin(range); k < n; ++it, ++k)
            ops[k] = select_op{(*it).core(), storage, false, false};
    }
    void finish(const select_op& op, std::size_t j) {
        std::optional<T> v;
        if (op.received) {
            T* p = std::launder(reinterpret_cast<T*>(storage));
            v.emplace(std::move(*p));
            p->~T();
        }
        if constexpr (std::is_invocable_v<F&, std::size_t, std::optional<T>>) {
            std::invoke(fn, j, std::move(v));
        } else if constexpr (std::is_invocable_v<F&, std::size_t, T>) {
            static_assert(std::is_default_constructible_v<T>,
                          "goro::recv_any: a handler taking (std::size_t, T) needs a "
                          "default-constructible T (for a closed channel); take "
                          "(std::size_t, std::optional<T>) instead");
            std::invoke(fn, j, v ? std::move(*v) : T{});
        } else if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
            // A one-argument handler is given the element's position: refuse
            // one written for the value (a generic `[](auto m)` too).
            static_assert(dependent_false<F>,
                          "goro::recv_any: a one-argument handler is given the element's "
                          "position; to get the value take (std::size_t element, "
                          "std::optional<T> value), or write (std::size_t element)");
        } else if constexpr (std::is_invocable_v<F&, std::size_t>) {
            std::invoke(fn, j);
        } else if constexpr (std::is_invocable_v<F&>) {
            std::invoke(fn);
        } else {
            static_assert(std::is_same_v<F, no_handler>,
                          "goro::recv_any: the handler must take (std::size_t element, "
                          "std::optional<T>), (std::size_t, T), (std::size_t) or nothing");
        }
    }
};

// dynamic_cases(cases, fn): the select_case<T>s of a span, each one case.
template <class T, class F>
struct dynamic_cases_t {
    std::span<select_case<T>> cases;
    F fn;

    std::size_t count() const { return cases.size(); }
    void fill(select_op* ops, std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) cases[k].fill(ops[k]);
    }
    void finish(const select_op& op, std::size_t j) {
        cases[j].finish(op);
        if constexpr (std::is_invocable_v<F&, std::size_t>)
            std::invoke(fn, j);
        else if constexpr (std::is_invocable_v<F&>)
            std::invoke(fn);
        else
            static_assert(std::is_same_v<F, no_handler>,
                          "goro::dynamic_cases: the handler must take (std::size_t element) or "
                          "nothing; the value is cases[element].value()");
    }
};

template <class C>
struct is_case_group : std::false_type {};
template <class R, class T, class F>
struct is_case_group<recv_any_t<R, T, F>> : std::true_type {};
template <class T, class F>
struct is_case_group<dynamic_cases_t<T, F>> : std::true_type {};

template <class C>
struct is_fixed_case : std::false_type {};
template <class T, class F>
struct is_fixed_case<recv_case_t<T, F>> : std::true_type {};
template <class T, class F>
struct is_fixed_case<send_case_t<T, F>> : std::true_type {};

template <class C>
inline constexpr bool is_select_arg =
    is_fixed_case<C>::value || is_case_group<C>::value || is_default_case<C>::value;

// The element type of a range of chan<T> / recv_chan<T>, or void.
template <class E>
struct recv_elem {
    using type = void;
};
template <class T>
struct recv_elem<chan<T>> {
    using type = T;
};
template <class T>
struct recv_elem<recv_chan<T>> {
    using type = T;
};

}  // namespace detail

// Receives from whichever channel of `chans` is ready (a forward range of
// chan<T> or recv_chan<T>, e.g. std::vector<goro::chan<Msg>>), as one case
// per element of a select among fixed cases. fn(j, v) gets the element's
// position j and the value (nullopt: chans[j] is closed); it may also take
// (j, T), (j) or nothing. Nil channels in the range are never ready. An
// lvalue range is referred to (keep it alive and unchanged during the
// select); an rvalue range is moved into the case.
template <std::ranges::forward_range R, class F = detail::no_handler>
auto recv_any(R&& chans, F&& fn = {}) {
    using E = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
    using T = typename detail::recv_elem<E>::type;
    static_assert(!std::is_void_v<T>,
                  "goro::recv_any: the range's elements must be goro::chan<T> or "
                  "goro::recv_chan<T> (for a ticker or timer, use its channel: t.c())");
    if constexpr (!std::is_void_v<T>) {
        using Stored = std::conditional_t<std::is_lvalue_reference_v<R>, R, std::remove_cvref_t<R>>;
        return detail::recv_any_t<Stored, T, std::decay_t<F>>{
            std::forward<R>(chans), std::forward<F>(fn), {}};
    } else {
        return detail::recv_case_t<unit, detail::no_handler>{};  // the error is said above
    }
}

// Embeds a dynamic select's cases (receives and sends on chan<T>s) as one
// case each in a select among fixed cases. fn(j) runs after cases[j] ran:
// cases[j].value() holds what it received (nullopt: closed). The cases are
// referred to: keep them alive during the select.
template <class T, class F = detail::no_handler>
detail::dynamic_cases_t<T, std::decay_t<F>> dynamic_cases(std::span<select_case<T>> cases,
                                                          F&& fn = {}) {
    return {cases, std::forward<F>(fn)};
}
template <class T, class F = detail::no_handler>
detail::dynamic_cases_t<T, std::decay_t<F>> dynamic_cases(std::vector<select_case<T>>& cases,
                                                          F&& fn = {}) {
    return {std::span<select_case<T>>(cases), std::forward<F>(fn)};
}

// A goro::ticker or goro::timer is not a channel: receive from its c().
template <detail::has_chan_accessor Tk, class F = detail::no_handler>
detail::recv_case_t<unit, detail::no_handler> recv_case(const Tk&, F&& = {}) {
    static_assert(detail::dependent_false<Tk>,
                  "goro::recv_case: a ticker or timer is not a channel; receive from its "
                  "channel: recv_case(t.c(), ...)");
    return {};
}

namespace detail {

// select() over fixed cases only: op k is case arg_of_op[k].
template <class... Cases>
std::size_t select_fixed(Cases&... cases) {
    constexpr std::size_t n = sizeof...(Cases);
    constexpr std::size_t defaults =
        (std::size_t{0} + ... + is_default_case<std::decay_t<Cases>>::value);
    constexpr std::size_t nops = n - defaults;

    select_op ops[nops > 0 ? nops : 1];
    std::size_t arg_of_op[nops > 0 ? nops : 1] = {};
    std::size_t default_arg = n;
    {
        std::size_t arg = 0, k = 0;
        auto fill = [&](auto& c) {
            if constexpr (is_default_case<std::decay_t<decltype(c)>>::value) {
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
    std::ptrdiff_t r = select_impl(ops, nops, defaults > 0);
    const std::size_t chosen = r < 0 ? default_arg : arg_of_op[r];
    {
        std::size_t arg = 0, k = 0;
        auto finish = [&](auto& c) {
            if constexpr (is_default_case<std::decay_t<decltype(c)>>::value) {
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

// select() with case groups: case arg owns ops [first[arg], first[arg] +
// count[arg]) (a fixed case one, a default none, a group one per element).
template <class... Cases>
select_result select_groups(Cases&... cases) {
    constexpr std::size_t n = sizeof...(Cases);
    std::size_t first[n], count[n];
    std::size_t total = 0, default_arg = n;
    {
        std::size_t arg = 0;
        auto size = [&](auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (is_default_case<C>::value) {
                count[arg] = 0;
                default_arg = arg;
            } else if constexpr (is_case_group<C>::value) {
                count[arg] = c.count();
            } else {
                count[arg] = 1;
            }
            first[arg] = total;
            total += count[arg];
            ++arg;
        };
        (size(cases), ...);
    }
    small_ops ops(total);
    {
        std::size_t arg = 0;
        auto fill = [&](auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (is_case_group<C>::value)
                c.fill(ops.data + first[arg], count[arg]);
            else if constexpr (!is_default_case<C>::value)
                c.fill(ops.data[first[arg]]);
            ++arg;
        };
        (fill(cases), ...);
    }
    constexpr bool has_default = (is_default_case<std::decay_t<Cases>>::value || ...);
    std::ptrdiff_t r = select_impl(ops.data, total, has_default);
    select_result res;
    constexpr bool group[n] = {is_case_group<std::decay_t<Cases>>::value...};
    if (r < 0) {
        res.index = default_arg;
    } else {
        const auto op = static_cast<std::size_t>(r);
        for (std::size_t a = 0; a < n; ++a)
            if (op >= first[a] && op < first[a] + count[a]) res.index = a;
        if (group[res.index]) res.element = op - first[res.index];
    }
    {
        std::size_t arg = 0;
        auto finish = [&](auto& c) {
            using C = std::decay_t<decltype(c)>;
            if (arg == res.index) {
                if constexpr (is_default_case<C>::value)
                    c.finish();
                else if constexpr (is_case_group<C>::value)
                    c.finish(ops.data[first[arg] + res.element], res.element);
                else
                    c.finish(ops.data[first[arg]]);
            }
            ++arg;
        };
        (finish(cases), ...);
    }
    return res;
}

}  // namespace detail

// Go's select: runs one ready case (chosen at random among the ready ones)
// and returns its index; parks until one is ready unless a default_case
// is given (see the top of this file). With a case group (recv_any,
// dynamic_cases) among the cases it returns a select_result, which also
// tells the group's element that ran.
template <class... Cases>
auto select(Cases&&... cases) {
    static_assert((detail::is_select_arg<std::decay_t<Cases>> && ...),
                  "goro::select: each argument must be a case: recv_case(ch, fn), "
                  "send_case(ch, v, fn), recv_any(chans, fn), dynamic_cases(cases, fn) or "
                  "default_case(fn) (for a ticker or timer, receive from its channel: "
                  "recv_case(t.c(), fn))");
    constexpr std::size_t defaults =
        (std::size_t{0} + ... + detail::is_default_case<std::decay_t<Cases>>::value);
    static_assert(defaults <= 1, "goro::select: at most one default_case");
    if constexpr (!(detail::is_select_arg<std::decay_t<Cases>> && ...))
        return std::size_t{0};  // the error is said above
    else if constexpr ((detail::is_case_group<std::decay_t<Cases>>::value || ...))
        return detail::select_groups(cases...);
    else
        return detail::select_fixed(cases...);
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
