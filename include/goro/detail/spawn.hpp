// goro/detail/spawn.hpp — what go() needs from the runtime, out of the way of
// the public header. A goroutine's record and its closure live at the top of
// its own stack: spawning allocates nothing else.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>
#include "goro/source_location.hpp"

namespace goro::detail {

struct goroutine;

struct spawn_slot {
    goroutine* g;
    void* storage;  // sized and aligned as asked, inside g's stack
};

// Takes a stack (and record) for a new goroutine with room for a closure.
spawn_slot spawn_prepare(std::size_t size, std::size_t align);
// The same with a stack reservation of stack_size bytes (goro::spawn_options;
// 0: the runtime's). Throws goro::misuse_error naming `who` when stack_size
// is out of range.
spawn_slot spawn_prepare_sized(std::size_t size, std::size_t align, std::size_t stack_size,
                               const char* who);
// Gives the stack back when constructing the closure threw.
void spawn_abandon(goroutine* g) noexcept;
// Makes g runnable; entry(storage) runs the closure and destroys it.
void spawn_commit(goroutine* g, void (*entry)(void*), const goro::source_location& where) noexcept;
// After a user's go(): when readying goroutines has filled the worker's run
// queue (it spilled half to the global queue), the calling goroutine yields
// to them once, as Go's scheduler preempts a goroutine that keeps spawning;
// otherwise a loop of go() calls keeps every goroutine it made alive at
// once (a stack page and page tables each). Not an unwind point; does
// nothing on a plain thread or during shutdown.
void spawn_yield_point() noexcept;

// Closures larger than this live on the heap, keeping stack tops small.
inline constexpr std::size_t inline_closure_limit = 512;

template <class Fn>
void run_closure(void* storage) {
    Fn* fn = static_cast<Fn*>(storage);
    struct destroy {
        Fn* fn;
        ~destroy() { fn->~Fn(); }
    } guard{fn};
    (*fn)();
}

template <class F, class Fn>
void spawn_in(spawn_slot s, Fn&& fn, const goro::source_location& where) {
    try {
        ::new (s.storage) F(std::forward<Fn>(fn));
    } catch (...) {
        spawn_abandon(s.g);
        throw;
    }
    spawn_commit(s.g, &run_closure<F>, where);
}

template <class F>
inline constexpr bool closure_fits = sizeof(F) <= inline_closure_limit &&
                                     alignof(F) <= alignof(std::max_align_t);

// The runtime's own goroutines (timers' and contexts' callbacks): never
// switches, so callers may hold what a switch must not cross.
template <class Fn>
void spawn_quiet(Fn&& fn, const goro::source_location& where) {
    using F = std::decay_t<Fn>;
    if constexpr (closure_fits<F>) {
        spawn_in<F>(spawn_prepare(sizeof(F), alignof(F)), std::forward<Fn>(fn), where);
    } else {
        auto boxed = [p = std::make_unique<F>(std::forward<Fn>(fn))] { (*p)(); };
        spawn_quiet(std::move(boxed), where);
    }
}

// A user's go(): spawn_quiet, then the yield point.
template <class Fn>
void spawn(Fn&& fn, const goro::source_location& where) {
    spawn_quiet(std::forward<Fn>(fn), where);
    spawn_yield_point();
}

// spawn() on a stack of stack_size bytes (0: the runtime's size).
template <class Fn>
void spawn_sized(Fn&& fn, const goro::source_location& where, std::size_t stack_size,
                 const char* who) {
    using F = std::decay_t<Fn>;
    if constexpr (closure_fits<F>) {
        spawn_in<F>(spawn_prepare_sized(sizeof(F), alignof(F), stack_size, who),
                    std::forward<Fn>(fn), where);
    } else {
        auto boxed = [p = std::make_unique<F>(std::forward<Fn>(fn))] { (*p)(); };
        spawn_sized(std::move(boxed), where, stack_size, who);
        return;
    }
    spawn_yield_point();
}

// `go f(x, y)`: the callable and its arguments are decay-copied now, invoked later.
template <class F, class... Args>
auto bind_go(F&& f, Args&&... args) {
    constexpr bool callable = std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>;
    static_assert(callable,
                  "goro::go(fn, args...): fn cannot be called with these arguments; they are "
                  "decay-copied and passed as rvalues (a parameter taking T& needs std::ref(x))");
    if constexpr (callable) {
        return [fn = std::decay_t<F>(std::forward<F>(f)),
                tup = std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)]() mutable {
            std::apply([&](auto&... a) { std::invoke(std::move(fn), std::move(a)...); }, tup);
        };
    } else {
        return [] {};
    }
}

template <class T>
concept not_location = !std::is_same_v<std::remove_cvref_t<T>, goro::source_location>;

}  // namespace goro::detail
