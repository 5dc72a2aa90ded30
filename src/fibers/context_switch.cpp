// fibers/context_switch.cpp — stack switching over Boost.Context fcontext,
// with sanitizer announcements. Each switch passes a `packet` naming the
// suspending side; the resuming side stores the suspended fcontext into it,
// so a fiber_context always holds the context of a *suspended* fiber.
//
// Announcements (sanitizers/hooks.hpp) are made when the program runs under
// ASan or TSan, whatever goro was compiled with; otherwise each costs a test
// of a weak reference. ASan: start_switch_fiber before the jump (the target
// stack's bounds; the suspending side's fake stack, or null when it exits),
// finish_switch_fiber first thing after landing (which also tells us the
// bounds of a thread's own stack, the first time we leave it). TSan: one
// fiber per goroutine (created in make_fiber, destroyed when the goroutine
// is released) and the thread's own fiber for the worker's loop;
// switch_to_fiber before the jump: with synchronization when goro itself is
// instrumented (each switch orders both sides, which goro's own hand-offs
// inside the runtime rely on); otherwise a worker's switch to a goroutine
// synchronizes (the goroutine acquires the worker's clock, which holds its
// thread's start only) and a goroutine's switch back does not: goroutines
// are ordered only by the hand-offs goro announces (sanitizers/hooks.hpp).
#include "fibers/context_switch.hpp"

#include <cxxabi.h>
#include <boost/context/detail/fcontext.hpp>
#include <cerrno>

#include "sanitizers/hooks.hpp"

namespace goro::detail {

namespace bctx = boost::context::detail;

namespace {

// Saves the running fiber's thread state into `from` and installs `to`'s.
// A worker's own context (thread_side) always leaves a clean state behind
// (no exception in flight or caught: its loop throws nothing), so: from a
// goroutine, save its state; towards the worker, leave a clean one; towards
// a goroutine, install its state — from the worker only when it has some
// (the fields are clean already), from another goroutine (a direct switch,
// scheduler::switch_out) always.
[[gnu::always_inline]] inline void carry_thread_state(fiber_context& from,
                                                      fiber_context& to) noexcept {
    thread_globals& t = this_thread_globals();
    auto* eh = static_cast<eh_globals*>(t.eh);
    if (!from.thread_side) {
        from.carried.caught_exceptions = eh->caught;
        from.carried.uncaught_exceptions = eh->uncaught;
        from.carried.error_number = *t.err;
#if defined(__ARM_EABI_UNWINDER__)
        from.carried.propagating_exceptions = eh->propagating;
        eh->propagating = nullptr;
#endif
    }
    if (to.thread_side) {
        if (eh->caught || eh->uncaught) [[unlikely]] {
            eh->caught = nullptr;
            eh->uncaught = 0;
        }
        return;
    }
    if (!from.thread_side || to.carried.caught_exceptions || to.carried.uncaught_exceptions) {
        eh->caught = to.carried.caught_exceptions;
        eh->uncaught = to.carried.uncaught_exceptions;
    }
#if defined(__ARM_EABI_UNWINDER__)
    eh->propagating = to.carried.propagating_exceptions;
#endif
    *t.err = to.carried.error_number;
}

struct packet {
    fiber_context* from;
    fiber_context* to;
    void* data;
};

// The sanitizers' side of a switch, behind one test of san::active()
// before the jump and one after it. Inline, in switch_to itself: after
// start_switch_fiber (ASan) or switch_to_fiber (TSan) nothing may return
// through a frame made before it (TSan would pop the new fiber's shadow
// stack; ASan's fake stack is already handed over).
inline void announce(fiber_context& from, fiber_context& to, bool exiting) {
    if (!san::active()) [[likely]]
        return;
    if (san::asan())
        __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.stack_bottom,
                                       to.stack_size);
    if (to.tsan_fiber) {  // TSan (set by make_fiber, init_thread_fiber)
        unsigned flags = san::tsan_switch_flags;
        if (from.thread_side) {
            // A worker to a goroutine: the goroutine acquires the worker's
            // clock (its sync is ignored otherwise: sanitizers/hooks.hpp).
            san::tsan_sync_resume();
            flags = san::tsan_switch_in_flags;
        } else {
            // Kept for the worker's exit only (its thread-locals' destructors
            // run after the goroutines that used them): nobody else acquires it.
            san::tsan_release(&to);
        }
        __tsan_switch_to_fiber(to.tsan_fiber, flags);
    }
}

// Runs on the resumed side, first thing after a jump lands. `self` is the
// side now running (null for a new fiber), own_fake_stack its ASan fake
// stack; in->from is the side just suspended, whose context is recorded.
inline void* landed(bctx::transfer_t t, const fiber_context* self, void** own_fake_stack) {
    auto* in = static_cast<packet*>(t.data);
    if (san::active()) [[unlikely]] {
        if (san::asan()) {
            const void* bottom = nullptr;
            std::size_t size = 0;
            __sanitizer_finish_switch_fiber(own_fake_stack ? *own_fake_stack : nullptr, &bottom,
                                            &size);
            if (!in->from->stack_bottom) {
                in->from->stack_bottom = bottom;
                in->from->stack_size = size;
            }
        }
        if (self && self->thread_side && self->tsan_fiber)
            san::tsan_sync_suspend();  // back on the worker's fiber
    }
    in->from->fctx = t.fctx;
    return in->data;
}

void trampoline(bctx::transfer_t t) {
    auto* in = static_cast<packet*>(t.data);
    fiber_context* self = in->to;
    void* data = landed(t, nullptr, nullptr);
    self->entry(data);
    __builtin_unreachable();  // entry ends with a switch that never returns
}

}  // namespace

void make_fiber(fiber_context& to, std::uintptr_t lo, std::uintptr_t hi, void (*entry)(void*)) {
    hi &= ~std::uintptr_t{15};
    to.fctx = bctx::make_fcontext(reinterpret_cast<void*>(hi), hi - lo, &trampoline);
    to.entry = entry;
    to.stack_bottom = reinterpret_cast<const void*>(lo);
    to.stack_size = hi - lo;
    to.asan_fake_stack = nullptr;
    to.carried = fiber_thread_state{};
    if (san::tsan()) [[unlikely]]
        to.tsan_fiber = __tsan_create_fiber(0);
}

void init_thread_fiber(fiber_context& self) {
    self = fiber_context{};
    self.thread_side = true;
    if (san::tsan()) [[unlikely]]
        self.tsan_fiber = __tsan_get_current_fiber();
}

void* switch_to(fiber_context& from, fiber_context& to, void* data, bool from_exiting) {
    packet p{&from, &to, data};
    carry_thread_state(from, to);
    announce(from, to, from_exiting);
    bctx::transfer_t t = bctx::jump_fcontext(static_cast<bctx::fcontext_t>(to.fctx), &p);
    return landed(t, &from, &from.asan_fake_stack);
}

[[gnu::tls_model("initial-exec")]] thread_local thread_globals tls_globals;

thread_globals& this_thread_globals_slow() noexcept {
    thread_globals& t = tls_globals;
    t.eh = abi::__cxa_get_globals();
    t.err = &errno;
    return t;
}

void destroy_fiber(fiber_context& c) {
    if (c.tsan_fiber) [[unlikely]] {
        __tsan_destroy_fiber(c.tsan_fiber);
        c.tsan_fiber = nullptr;
    }
}

}  // namespace goro::detail
