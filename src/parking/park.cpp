// parking/park.cpp — park() and ready(): the one parking primitive.
//
// For a goroutine, park() records the unlock callback and switches away:
// to its worker's loop, or straight to the next goroutine (switch_out in
// worker.cpp). Whichever side is switched in runs the callback after the
// switch and then marks the park finished (worker.cpp, finish_park): the
// goroutine is fully suspended before any waker can find it, and fully
// parked before shutdown may claim it.
// ready() puts it back on a run queue.
//
// For a plain thread, park() runs the callback and sleeps on a futex word in
// its thread_parker; ready() sets the word and wakes it. A ready() that comes
// before the sleep is not lost: the word stays set. Plain threads are never
// unwound: shutdown only concerns goroutines.
#include <atomic>

#include "fibers/context_switch.hpp"
#include "goro/detail/park.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

std::atomic<bool> g_shutting_down{false};
std::atomic<std::int64_t> plain_parked{0};

namespace {

struct thread_parker : parker {
    std::atomic<std::uint32_t> word{0};
};

thread_local thread_parker tls_parker;

wake park_thread(thread_parker* p, wait_reason reason, void (*unlock)(void*), void* arg) noexcept {
    // run()'s caller waits for its main goroutine: it never wakes anyone.
    const bool counted = reason != wait_reason::run;
    if (counted) plain_parked.fetch_add(1, std::memory_order_seq_cst);
    if (unlock) unlock(arg);
    while (p->word.load(std::memory_order_acquire) == 0) futex_wait(&p->word, 0);
    p->word.store(0, std::memory_order_relaxed);
    san::tsan_acquire(p);  // what the waker did before ready() (TSan)
    if (counted) plain_parked.fetch_sub(1, std::memory_order_seq_cst);
    return wake::normal;
}

}  // namespace

bool must_unwind_now() noexcept {
    return shutting_down() && this_goroutine_record() && running_uncaught_exceptions() == 0;
}

[[noreturn]] void abandon_swallower(goroutine* g) noexcept;  // runtime/lifecycle.cpp
[[noreturn]] void abandon_restarted(goroutine* g) noexcept;  // runtime/lifecycle.cpp

// A goroutine this many spawns deep into the shutdown (each started by the
// unwinding of the one before: a supervisor's destructor that restarts its
// worker) is abandoned instead of unwound, which would start the next.
// Small: a guard that restarts two goroutines doubles the chain each time.
constexpr std::uint32_t max_shutdown_generation = 8;

[[noreturn]] void throw_unwind() {
    if (goroutine* g = this_goroutine_record()) {
        if (g->unwinds_thrown.fetch_add(1, std::memory_order_relaxed) > 0 && shutting_down())
            if (scheduler* s = current_scheduler();
                s && s->abandon_swallowers.load(std::memory_order_acquire))
                abandon_swallower(g);
        if (g->shutdown_generation > max_shutdown_generation && shutting_down()) [[unlikely]]
            abandon_restarted(g);
    }
    throw goroutine_unwind{};
}

parker* current_parker() noexcept {
    if (goroutine* g = this_goroutine_record()) return g;
    return &tls_parker;
}

[[gnu::noinline]] static std::uintptr_t stack_pointer() noexcept {
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

wake park(wait_reason reason, void (*unlock)(void*), void* arg, park_mode mode,
          const void* object) noexcept {
    goroutine* g = this_goroutine_record();
    if (!g) return park_thread(&tls_parker, reason, unlock, arg);
    // In a destructor during unwinding a throw would terminate: wait as usual.
    // A pinned park is never claimed by shutdown, in a destructor or not.
    const std::uint8_t bit = mode == park_mode::pinned                   ? park_bits::parked_pinned
                             : running_uncaught_exceptions() > 0         ? park_bits::parked_exempt
                             : mode == park_mode::waits_through_shutdown ? park_bits::parked_waits
                                                                         : park_bits::parked;
    if (bit == park_bits::parked && shutting_down() && claim(g)) {
        // Unwinding: do not sleep. The claim keeps late wakers away.
        if (unlock) unlock(arg);
        return wake::unwind;
    }
    GORO_ASSERT((g->word.load(std::memory_order_relaxed) & park_bits::all) == 0,
                "park: a goroutine parks outside an open episode (begin_park first)");
    g->reason.store(reason, std::memory_order_relaxed);
    g->unlock = unlock;
    g->unlock_arg = arg;
    g->park_bit = bit;
    g->waiting_on.store(object, std::memory_order_relaxed);
    g->parked_since.store(coarse_now_ns(), std::memory_order_relaxed);
    g->action = switch_action::park;
    // TSan: what this goroutine did before parking on `object`, released as
    // this goroutine; the unlock callback runs on the worker's fiber, which
    // announces nothing (sanitizers/hooks.hpp).
    if (object) san::tsan_release(object);
    switch_away(g, stack_pointer());
    // Resumed, maybe on another worker.
    san::tsan_acquire(static_cast<parker*>(g));  // what the waker did before ready() (TSan)
    g->reason.store(wait_reason::none, std::memory_order_relaxed);
    if (g->unwind_requested) {
        g->unwind_requested = false;
        return wake::unwind;
    }
    return wake::normal;
}

void ready(parker* p) noexcept {
    san::tsan_release(p);  // to the parker, when park() returns (TSan)
    if (p->is_goroutine) {
        if (this_worker()) {  // on a worker, its runtime is alive
            current_scheduler()->ready(static_cast<goroutine*>(p), false);
            return;
        }
        // From a plain thread the readied goroutine may run, finish and let
        // run() end before ready() returns: the use keeps the scheduler.
        runtime_use use(false);
        use.get()->ready(static_cast<goroutine*>(p), false);
        return;
    }
    auto* t = static_cast<thread_parker*>(p);
    t->word.store(1, std::memory_order_release);
    futex_wake(&t->word, 1);
}

}  // namespace goro::detail
