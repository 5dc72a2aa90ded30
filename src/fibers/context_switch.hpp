// fibers/context_switch.hpp — the one place that switches stacks.
//
// A thin layer over Boost.Context's fcontext primitives that also announces
// every switch to the sanitizers (ASan: start/finish_switch_fiber, TSan:
// *_fiber), so that they follow execution across goroutine stacks. Swapping
// Boost.Context for hand-written assembly would touch only this file and its
// .cpp.
//
// Protocol: every switch is `switch_to(from_state, to_state, data)`; the side
// that resumes calls `arrived(state)` first thing. A fiber_context is valid
// only while its fiber is suspended.
//
// Thread state that travels with a fiber: the C++ runtime keeps the stack of
// caught exceptions and the count of uncaught ones per OS thread, and libc
// keeps errno per thread. A goroutine that parks inside a catch block or in a
// destructor during unwinding, then resumes on another worker, must find its
// own values there (std::current_exception, std::uncaught_exceptions, a
// rethrow, errno), and must not leave them behind for the next goroutine on
// the old worker. So every switch saves the thread's values into the
// suspending fiber's context and installs the resuming fiber's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace goro::detail {

// The per-thread state a fiber carries (see the top of this file). The first
// two fields mirror the Itanium C++ ABI's __cxa_eh_globals.
struct fiber_thread_state {
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
#if defined(__ARM_EABI_UNWINDER__)
    void* propagating_exceptions = nullptr;
#endif
    int error_number = 0;  // errno
};

struct fiber_context {
    void* fctx = nullptr;        // boost::context::detail::fcontext_t of the suspended side
    fiber_thread_state carried;  // saved while suspended
    bool thread_side = false;    // a thread's own stack (init_thread_fiber), not a fiber
    // Sanitizer bookkeeping for this execution context.
    void* tsan_fiber = nullptr;
    void* asan_fake_stack = nullptr;
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void (*entry)(void* data) = nullptr;  // what a new fiber runs first
};

// Prepares `to` to run entry(data) on [lo, hi) at its first switch_to(.., to, data).
// entry must never return: it ends with switch_to(.., from_exiting = true).
void make_fiber(fiber_context& to, std::uintptr_t lo, std::uintptr_t hi, void (*entry)(void*));
// Called on a thread's own stack once, to describe it (for ASan and TSan).
void init_thread_fiber(fiber_context& self);
// Suspends the caller (its state saved in `from`), resumes `to`, passing data.
// Returns the data passed by whoever resumes the caller later. `from_exiting`
// tells the sanitizers that the caller's fiber never resumes.
void* switch_to(fiber_context& from, fiber_context& to, void* data, bool from_exiting = false);
// Frees sanitizer state of a fiber that has exited.
void destroy_fiber(fiber_context& c);
// The calling thread's exception globals and errno, looked up once per
// thread (both are fixed per thread). Read only before a jump, never after
// one: the code after a jump may run on another thread.
struct thread_globals {
    void* eh = nullptr;  // __cxa_eh_globals*
    int* err = nullptr;
};
// Layout of __cxa_eh_globals (libstdc++ and libc++abi agree on it).
struct eh_globals {
    void* caught;
    unsigned int uncaught;
#if defined(__ARM_EABI_UNWINDER__)
    void* propagating;
#endif
};
// initial-exec: one %fs-relative load (goro is linked when the program
// starts, never dlopen'd in a way that needs the general model).
extern thread_local thread_globals tls_globals [[gnu::tls_model("initial-exec")]];
thread_globals& this_thread_globals_slow() noexcept;
[[gnu::always_inline]] inline thread_globals& this_thread_globals() noexcept {
    thread_globals& t = tls_globals;
    if (!t.eh) [[unlikely]]
        return this_thread_globals_slow();
    return t;
}
// std::uncaught_exceptions() of the running fiber, cheaply (no libstdc++ call).
inline unsigned int running_uncaught_exceptions() noexcept {
    return static_cast<eh_globals*>(this_thread_globals().eh)->uncaught;
}

}  // namespace goro::detail
