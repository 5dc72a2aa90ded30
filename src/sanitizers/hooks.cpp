// sanitizers/hooks.cpp — the out-of-line parts of sanitizers/hooks.hpp:
// what runs only under TSan, and needs to know where it runs.
//
// Invariant: a worker's own fiber (the worker loop, not one of its
// goroutines) never acquires and, like the monitor thread, has its memory
// accesses ignored (tsan_ignore_begin in worker_main and the monitor's
// loop), when goro is not itself instrumented.
#include "sanitizers/hooks.hpp"

#include "scheduler/scheduler.hpp"

namespace goro::detail::san {

#if !defined(GORO_INSTRUMENTED_TSAN)
void tsan_acquire_slow(const void* a) noexcept {
    if (worker* w = this_worker(); w && !w->current.load(std::memory_order_relaxed)) return;
    __tsan_acquire(const_cast<void*>(a));
}
#endif

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

}  // namespace goro::detail::san
