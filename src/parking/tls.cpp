// parking/tls.cpp — thread-local state, read only through these out-of-line
// functions. A goroutine migrates between threads at every park, and a
// compiler may keep a thread-local's address in a register across a call;
// calling out of this file forces a fresh lookup after each resume.
#include "scheduler/scheduler.hpp"

namespace goro::detail {

//
// tls_worker is atomic (relaxed loads: a plain load on x86 and ARM) for one
// writer other than its thread: a shutdown that abandons the goroutine a
// worker has run without blocking for too long clears it through
// worker::tls (forget_worker_thread), so that the thread, which goes on
// running that goroutine, is a plain thread to goro from then on. Before
// that it tags worker::current (bit 0), which this_goroutine_record masks.

namespace {
[[gnu::tls_model("initial-exec")]] thread_local std::atomic<worker*> tls_worker{nullptr};
}

[[gnu::noinline]] worker* this_worker() noexcept {
    asm volatile("" ::: "memory");
    return tls_worker.load(std::memory_order_relaxed);
}

[[gnu::noinline]] void set_this_worker(worker* w) noexcept {
    if (w) w->tls = &tls_worker;
    tls_worker.store(w, std::memory_order_relaxed);
}

void forget_worker_thread(worker* w) noexcept {
    w->tls->store(nullptr, std::memory_order_seq_cst);
}

[[gnu::noinline]] goroutine* this_goroutine_record() noexcept {
    asm volatile("" ::: "memory");
    worker* w = tls_worker.load(std::memory_order_relaxed);
    if (!w) return nullptr;
    // Bit 0 tags a goroutine a shutdown gave up on (lifecycle.cpp, spinner_watch).
    auto bits = reinterpret_cast<std::uintptr_t>(w->current.load(std::memory_order_relaxed));
    return reinterpret_cast<goroutine*>(bits & ~std::uintptr_t{1});
}

}  // namespace goro::detail
