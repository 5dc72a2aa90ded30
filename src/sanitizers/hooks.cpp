// sanitizers/hooks.cpp — the out-of-line parts of sanitizers/hooks.hpp:
// what runs only under TSan, and needs to know where it runs.
//
// Invariant: a worker's own fiber (the worker loop, not one of its
// goroutines) never acquires and, like the monitor thread, has its memory
// accesses and synchronization ignored (tsan_ignore_all_begin in
// worker_main and the monitor's loop), except that it releases its clock to
// each goroutine it switches to; when goro is not itself instrumented.
#include "sanitizers/hooks.hpp"

#include "scheduler/scheduler.hpp"

namespace goro::detail::san {

bool g_active = false;

namespace {
// Before main, and before the constructors of the program's own statics
// (priority 101 is the first an application may use).
[[gnu::constructor(101)]] void detect() noexcept {
    g_active = asan() || tsan();
}
}  // namespace

#if !defined(GORO_INSTRUMENTED_TSAN)
void tsan_acquire_slow(const void* a) noexcept {
    if (!tsan()) return;
    if (worker* w = this_worker(); w && !w->current.load(std::memory_order_relaxed)) return;
    __tsan_acquire(const_cast<void*>(a));
}

void tsan_release_slow(const void* a) noexcept {
    if (tsan()) __tsan_release(const_cast<void*>(a));
}
#endif

void tsan_acquire_at_exit(const void* a) noexcept {
#if !defined(GORO_INSTRUMENTED_TSAN)
    if (&__tsan_acquire != nullptr) [[unlikely]]
        __tsan_acquire(const_cast<void*>(a));
#else
    (void)a;
#endif
}

void tsan_ignore_begin() noexcept {
#if !defined(GORO_INSTRUMENTED_TSAN)
    if (tsan() && &AnnotateIgnoreWritesBegin != nullptr) [[unlikely]]
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
}

void tsan_ignore_end() noexcept {
#if !defined(GORO_INSTRUMENTED_TSAN)
    if (tsan() && &AnnotateIgnoreWritesEnd != nullptr) [[unlikely]]
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
#endif
}

void tsan_ignore_all_begin() noexcept {
    tsan_ignore_begin();
    tsan_sync_suspend();
}

void tsan_ignore_all_end() noexcept {
    tsan_sync_resume();
    tsan_ignore_end();
}

void tsan_sync_resume() noexcept {
#if !defined(GORO_INSTRUMENTED_TSAN)
    if (tsan() && &AnnotateIgnoreSyncEnd != nullptr) [[unlikely]]
        AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
#endif
}

void tsan_sync_suspend() noexcept {
#if !defined(GORO_INSTRUMENTED_TSAN)
    if (tsan() && &AnnotateIgnoreSyncBegin != nullptr) [[unlikely]]
        AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
#endif
}

}  // namespace goro::detail::san
