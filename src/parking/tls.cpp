// parking/tls.cpp — thread-local state, read only through these out-of-line
// functions. A goroutine migrates between threads at every park, and a
// compiler may keep a thread-local's address in a register across a call;
// calling out of this file forces a fresh lookup after each resume.
#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {
[[gnu::tls_model("initial-exec")]] thread_local worker* tls_worker = nullptr;
}

[[gnu::noinline]] worker* this_worker() noexcept {
    asm volatile("" ::: "memory");
    return tls_worker;
}

[[gnu::noinline]] void set_this_worker(worker* w) noexcept {
    tls_worker = w;
}

[[gnu::noinline]] goroutine* this_goroutine_record() noexcept {
    asm volatile("" ::: "memory");
    worker* w = tls_worker;
    return w ? w->current.load(std::memory_order_relaxed) : nullptr;
}

}  // namespace goro::detail
