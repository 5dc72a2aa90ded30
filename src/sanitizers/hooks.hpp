// sanitizers/hooks.hpp — what goro tells ASan and TSan, decided at run time.
//
// One libgoro serves every program: the program, not goro's build, decides
// whether it runs under a sanitizer. The sanitizer runtimes define the hooks
// below; goro references them weakly, so in a program without a sanitizer
// they resolve to null. Before main (a constructor in hooks.cpp) goro looks
// once and caches the answer in san::g_active; the hot paths (a stack
// switch, a channel's lock, a park) test that flag once — one load and one
// well-predicted branch — and make every call out of line behind it.
// Nothing is called unless a runtime is there.
//
// Two kinds of hooks:
//  - Stack switches (context_switch.cpp). ASan must know which stack runs
//    (start/finish_switch_fiber), TSan which logical thread (*_fiber).
//    Needed whenever the runtime is loaded, whether or not goro itself was
//    compiled with -fsanitize.
//  - Happens-before edges (TSan only), the model of Go's race detector:
//    goroutines are ordered where goro hands something over, and nowhere
//    else. When goro is compiled without -fsanitize=thread and the program
//    with it, TSan sees the program's memory accesses — its own code and
//    goro's templates, which run its values' moves and closures — but not
//    goro's atomics and futexes. goro then switches TSan fibers without
//    synchronizing (no_sync), so that two goroutines that merely run one
//    after the other on a worker are not ordered (a race between them is
//    reported), and announces each hand-off it makes on the program's
//    behalf, as a release on the giving side and an acquire on the taking
//    side of one address (tsan_release/tsan_acquire):
//      * a goroutine's record: spawn_commit releases it, the new goroutine
//        acquires it before its closure runs; the record, at the top of the
//        goroutine's stack, also orders a reused stack's old frames before
//        the next closure (the goroutine releases it as it exits,
//        spawn_prepare acquires it); ready() releases a parker, park()
//        acquires it when it returns;
//      * a channel core: every lock of its mutex acquires it, every unlock
//        releases it (the buffer, the waiters' values and the core's free).
//        A goroutine that parks releases what it parks on (park()'s
//        `object`; select releases its cores) before the switch, since the
//        unlock after it runs on the worker's fiber;
//      * each sync primitive (mutex, rw_mutex, once, semaphore, cond,
//        wait_group) and context: what it publishes releases it, what
//        observes that acquires it, on the address the primitive's inline
//        atomics use (where goro observes a release that TSan makes inside
//        such an inline atomic — a mutex's inline unlock — by
//        tsan_acquire_inline_release, below);
//      * goro::blocking's call record (to the pool thread and back), an
//        after_func's state (its creator, to the goroutine that runs it), a
//        context's after-funcs (registration, to the cancel that starts them).
//    A worker's own fiber (its loop, timer fires, the unlocks it runs for a
//    goroutine that parked, the netpoller) and the monitor thread do goro's
//    bookkeeping only: TSan ignores their memory accesses (which include
//    the frees of goro's records and the program code a fire may run, such
//    as copying an after_func's function) and their synchronization (the
//    netpoller's epoll_wait, say, would otherwise acquire what every
//    goroutine that armed a descriptor did). So a worker's clock holds its
//    thread's start and nothing else; a goroutine switched in acquires it
//    (the worker's thread-locals, such as errno, were initialized before
//    the goroutine reads them), and what a worker passes on is acquired by
//    the goroutine that receives it (an after_func's goroutine acquires the
//    function's state itself). Each goroutine's switch back to its worker
//    releases the worker's record, which the worker acquires only as its
//    thread ends: its thread-locals' destructors run after the goroutines
//    that used them.
//    goro's own bookkeeping on the program's threads and goroutines, where
//    it allocates, frees or copies memory under its own locks, is ignored
//    too (ignore_scope: the context tree, timers, cond's tickets, signal
//    subscriptions, goro::blocking's call records), since TSan would see
//    those accesses (malloc, free and memcpy are intercepted wherever they
//    are called) but not the locks that order them.
//    Threads of the blocking pool are TSan threads: calls one thread runs
//    in turn are ordered after one another (which can hide a race between
//    their callers). run() ignores its caller's accesses while it tears the
//    runtime down, once every goroutine has ended.
//    When goro is itself compiled with -fsanitize=thread, TSan sees its
//    atomics: fibers are switched with synchronization (every switch orders
//    the two sides, as before: goro's own tests need its internal hand-offs
//    seen), nothing is ignored and these announcements compile to nothing.
#pragma once

#include <cstddef>

extern "C" {
// ASan (and LSan) interface, as in <sanitizer/common_interface_defs.h>,
// <sanitizer/asan_interface.h> and <sanitizer/lsan_interface.h>.
__attribute__((weak)) void __sanitizer_start_switch_fiber(void** fake_stack_save,
                                                          const void* bottom, std::size_t size);
__attribute__((weak)) void __sanitizer_finish_switch_fiber(void* fake_stack_save,
                                                           const void** bottom_old,
                                                           std::size_t* size_old);
__attribute__((weak)) void __asan_unpoison_memory_region(void const volatile* addr,
                                                         std::size_t size);
__attribute__((weak)) void __lsan_register_root_region(const void* p, std::size_t size);
// TSan interface, as in <sanitizer/tsan_interface.h>.
__attribute__((weak)) void* __tsan_get_current_fiber(void);
__attribute__((weak)) void* __tsan_create_fiber(unsigned flags);
__attribute__((weak)) void __tsan_destroy_fiber(void* fiber);
__attribute__((weak)) void __tsan_switch_to_fiber(void* fiber, unsigned flags);
__attribute__((weak)) void __tsan_acquire(void* addr);
__attribute__((weak)) void __tsan_release(void* addr);
// TSan's dynamic annotations (exported by every TSan runtime).
__attribute__((weak)) void AnnotateIgnoreWritesBegin(const char* file, int line);
__attribute__((weak)) void AnnotateIgnoreWritesEnd(const char* file, int line);
__attribute__((weak)) void AnnotateIgnoreSyncBegin(const char* file, int line);
__attribute__((weak)) void AnnotateIgnoreSyncEnd(const char* file, int line);
}

// Whether goro itself is compiled with a sanitizer (GORO_SANITIZE).
#if defined(__SANITIZE_THREAD__)
#define GORO_INSTRUMENTED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_INSTRUMENTED_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define GORO_INSTRUMENTED_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_INSTRUMENTED_ASAN 1
#endif
#endif

namespace goro::detail::san {

// Whether the program runs under ASan or TSan; set before main and never
// changed (hooks.cpp).
extern bool g_active;
inline bool active() noexcept {
    return g_active;
}

// The program runs under ASan (or LSan, for lsan_register_root_region).
inline bool asan() noexcept {
    return &__sanitizer_start_switch_fiber != nullptr;
}
inline bool lsan() noexcept {
    return &__lsan_register_root_region != nullptr;
}
// The program runs under TSan.
inline bool tsan() noexcept {
    return &__tsan_switch_to_fiber != nullptr;
}

// Happens-before edges for a TSan program over an uninstrumented goro (see
// the top of this file). `a` must stay valid for the call only.
#if defined(GORO_INSTRUMENTED_TSAN)
inline void tsan_acquire(const void*) noexcept {}
inline void tsan_release(const void*) noexcept {}
#else
[[gnu::cold]] void tsan_acquire_slow(const void* a) noexcept;  // hooks.cpp
[[gnu::cold]] void tsan_release_slow(const void* a) noexcept;
inline void tsan_acquire(const void* a) noexcept {
    if (active()) [[unlikely]]
        tsan_acquire_slow(a);
}
inline void tsan_release(const void* a) noexcept {
    if (active()) [[unlikely]]
        tsan_release_slow(a);
}
#endif

// The flags for __tsan_switch_to_fiber (sanitizer/tsan_interface.h:
// __tsan_switch_to_fiber_no_sync = 1): from a goroutine to its worker; a
// worker's switch to a goroutine synchronizes (see the top of this file).
#if defined(GORO_INSTRUMENTED_TSAN)
inline constexpr unsigned tsan_switch_flags = 0;
#else
inline constexpr unsigned tsan_switch_flags = 1;
#endif
inline constexpr unsigned tsan_switch_in_flags = 0;

// TSan ignores the memory accesses of the calling thread (fiber) from
// begin to end: goro's bookkeeping on a goroutine, run()'s teardown (see the
// top of this file). Nothing in a program without TSan, or when goro itself
// is instrumented.
void tsan_ignore_begin() noexcept;
void tsan_ignore_end() noexcept;
// The same, synchronization included: a worker's own fiber and the monitor
// thread, for their whole life. A worker lifts the sync part around its
// switch to a goroutine (context_switch.cpp), so the goroutine acquires the
// worker's clock.
void tsan_ignore_all_begin() noexcept;
void tsan_ignore_all_end() noexcept;
void tsan_sync_resume() noexcept;   // the worker's switch to a goroutine
void tsan_sync_suspend() noexcept;  // ... and back
// An acquire made on a worker's own fiber as its thread ends.
void tsan_acquire_at_exit(const void* a) noexcept;
class ignore_scope {
  public:
    ignore_scope() noexcept : on_(active()) {
        if (on_) [[unlikely]]
            tsan_ignore_begin();
    }
    ~ignore_scope() {
        if (on_) [[unlikely]]
            tsan_ignore_end();
    }
    ignore_scope(const ignore_scope&) = delete;
    ignore_scope& operator=(const ignore_scope&) = delete;

  private:
    bool on_;
};

// The first member of a class whose destructor calls tsan_ignore_begin():
// ends the ignoring once the other members are destroyed too.
struct ignore_until_destroyed {
    ~ignore_until_destroyed() { tsan_ignore_end(); }
};

// Holds a shared_ptr whose last release may free goro's bookkeeping: the
// release is made with the accesses ignored (a reference counted inside
// goro is invisible to TSan, so the free would look unordered).
template <class P>
struct release_ignored {
    P p;
    release_ignored(P q) noexcept : p(static_cast<P&&>(q)) {}
    release_ignored(release_ignored&&) noexcept = default;
    release_ignored(const release_ignored&) = default;
    ~release_ignored() {
        ignore_scope s;
        p = P();
    }
};

// tsan_acquire(a) when the scope ends, however it ends.
struct acquire_on_exit {
    const void* a;
    ~acquire_on_exit() { tsan_acquire(a); }
};

// An acquire of a release that TSan itself made inside one of goro's inline
// atomics (compiled into the program, so seen: goro::mutex::unlock's fast
// path), after goro saw that atomic's new value with its own, unseen one.
// TSan's atomic publishes the value first and then, still holding the lock
// of `a`'s sync object, stores the releaser's clock there; an acquire takes
// that lock, so normally waits for the release in flight. But the TSan of
// LLVM 14 (__tsan::Acquire) looks for the sync object's clock *before*
// taking the lock and returns at once when there is none, i.e. until the
// first release on `a` has stored one: the first hand-off through such an
// atomic, seen in that instant, was lost (a race reported between the two
// sides of a goro::mutex, flaking Sanitizer.ThreadProgramOver*Goro at the
// end of run(), where fresh mutexes first change hands under contention).
// A release first takes the lock (waiting for the one in flight) and leaves
// a clock, so the acquire after it cannot miss. It publishes the caller's
// clock too: call this only where that orders nothing new, i.e. where the
// caller holds what `a` guards (its own next release will publish more).
inline void tsan_acquire_inline_release(const void* a) noexcept {
    tsan_release(a);
    tsan_acquire(a);
}

// Marks memory that instrumented frames left poisoned as addressable again
// (a stack about to be reused).
inline void asan_unpoison(const void* p, std::size_t n) noexcept {
    if (&__asan_unpoison_memory_region != nullptr) [[unlikely]]
        __asan_unpoison_memory_region(p, n);
}
// Lets LeakSanitizer look for pointers in [p, p + n) (a leaked stack).
inline void lsan_root(const void* p, std::size_t n) noexcept {
    if (lsan()) [[unlikely]]
        __lsan_register_root_region(p, n);
}

}  // namespace goro::detail::san
