// scheduler/procs.cpp — changing the number of workers that take work while
// the runtime runs (goro::set_procs, Go's GOMAXPROCS(n)).
//
// A scheduler has nprocs worker *slots*, fixed at start: max(procs, the
// hardware threads). Workers [0, active) take work as usual; a worker whose
// index is at or above `active` is *retired*: at its next look for work
// (find_runnable's first step) it hands its runnext and local queue to the
// global queue, gives its stack cache back, and from then on runs only the
// goroutines locked to it (goro::lock_os_thread: they can run nowhere
// else), sleeping on its retire_word in between. Slots above the starting
// count are never launched until set_active raises `active` over them.
//
// Retired worker (retired_pick)          waker (set_active, ready_pinned, stop)
//   R1 retired := true (seq_cst)           W1 publish: active, a pinned push,
//   R2 seen := retire_word (acquire)          or stopping
//   R3 recheck: stopping, index < active,  W2 seq_cst fence; read retired
//      its pinned queue: any -> leave      W3 if retired: retire_word += 1
//   R4 futex_wait(retire_word, seen)          (release), futex_wake
// Either R3 sees W1, or W2 sees R1 and W3's bump lands after R2 (the wait
// returns at once) or wakes R4. set_active and stop bump unconditionally.
//
// A worker that is retired while it runs a goroutine retires once that
// goroutine switches out; one that sleeps in the idle list is poked and
// retires when it looks for work. Retired workers are not in the idle list;
// `parked_workers` counts them (and unlaunched slots) for the monitor's
// deadlock check. The spinning bound (idle.hpp) still counts retired
// workers as busy: a little more spinning allowed, nothing lost.
//
// Lock order: procs_mu (set_active only; taken with nothing else held)
// -> the idle list (poke_if_idle).
#include "scheduler/scheduler.hpp"

namespace goro::detail {

unsigned scheduler::set_active(unsigned n) {
    lock_scope lk(procs_mu);
    const unsigned old = active.exchange(n, std::memory_order_seq_cst);  // W1
    for (unsigned i = 0; i < nprocs; ++i) {
        worker* w = workers[i];
        if (i < n && !w->started.load(std::memory_order_relaxed)) {
            // Counted as parked until now; it starts as an active worker.
            w->started.store(true, std::memory_order_relaxed);
            parked_workers.fetch_sub(1, std::memory_order_seq_cst);
            w->thread = std::thread([this, w] { worker_main(w); });
        } else if (i < n) {
            wake_retired(w);  // back to work, if it slept retired
        } else if (i < old) {
            idle.poke_if_idle(w);  // idle: wake it to retire
        }
    }
    if (n > old) wakep();
    return old;
}

void scheduler::wake_retired(worker* w) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // W2
    if (!w->retired.load(std::memory_order_seq_cst)) return;
    w->retire_word.fetch_add(1, std::memory_order_release);  // W3
    futex_wake(&w->retire_word, 1);
}

goroutine* scheduler::retired_pick(worker* w) noexcept {
    if (w->spinning) idle.found_work(w);  // the last spinner hands the search on
    // Its queued goroutines go where the active workers look.
    bool moved = false;
    if (goroutine* g = w->runnext.exchange(nullptr, std::memory_order_acq_rel)) {
        push_global(g);
        moved = true;
    }
    while (goroutine* g = w->rq.pop()) {
        push_global(g);
        moved = true;
    }
    if (moved) wakep();
    if (goroutine* g = nullptr; w->pinned.pop_batch(&g, 1)) return g;
    w->stacks.flush();
    w->retired.store(true, std::memory_order_seq_cst);  // R1
    parked_workers.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
        const std::uint32_t seen = w->retire_word.load(std::memory_order_acquire);  // R2
        if (stopping.load(std::memory_order_seq_cst) ||
            w->index < active.load(std::memory_order_seq_cst) || !w->pinned.empty())  // R3
            break;
        futex_wait(&w->retire_word, seen);  // R4
    }
    parked_workers.fetch_sub(1, std::memory_order_seq_cst);
    w->retired.store(false, std::memory_order_seq_cst);
    return nullptr;
}

}  // namespace goro::detail
