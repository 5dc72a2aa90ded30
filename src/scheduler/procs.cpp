// scheduler/procs.cpp — changing the number of workers that take work while
// the runtime runs (goro::set_procs, Go's runtime.GOMAXPROCS(n)).
//
// A scheduler has nprocs worker *slots*, fixed at start: max(procs, the
// hardware threads); `workers` never changes size. Invariants:
//   - workers [0, active) take work as usual; [active, launched) are
//     *retired*; [launched, nprocs) have no thread yet. 1 <= active <=
//     nprocs; launched only grows, and [0, launched) all have threads.
//   - worker::halt == (index >= active || stopping), up to a moment's lag
//     (written under procs_mu after `active`): find_runnable's first step
//     reads only the flag, as it read only `stopping` before set_procs
//     existed, and then `active` to tell retired from active again.
//   - a retired worker, at its next look for work (find_runnable's first
//     step), hands its runnext and local queue to the global queue (and the
//     search on, if it was the last spinner), gives its stack cache back,
//     and from then on runs only the goroutines locked to it
//     (goro::lock_os_thread: they can run nowhere else), sleeping on its
//     retire_word in between. It never sleeps in the idle list (park_worker
//     checks `active` after B1), never runs timers or polls.
//   - parked_workers = retired workers asleep on retire_word + slots not
//     launched; the monitor counts them with the idle ones.
//
// A worker retired while it runs a goroutine retires when that goroutine
// next switches out (no preemption); meanwhile its queue can be stolen.
// set_procs called from that goroutine yields, so that it returns on a
// worker that takes work. Goroutines locked to a retired worker run beside
// the active workers: set_procs(1) serializes every goroutine but those.
//
// Retired worker (retired_pick)          waker (set_active, ready_pinned, stop)
//   R1 retired := true (seq_cst), fence    W1 publish: active, a pinned push,
//   R2 seen := retire_word (acquire)          or stopping
//   R3 recheck: stopping, index < active,  W2 seq_cst fence; read retired
//      its pinned queue: any -> leave      W3 if retired: retire_word += 1
//   R4 futex_wait(retire_word, seen)          (release), futex_wake
// Either R3 sees W1, or W2 sees R1 and W3's bump comes after R2 (the wait
// returns at once) or wakes R4.
//
// Raising launches the missing slots first: a new worker starts retired
// (its index >= active) and is woken by the raise like the others.
//
// Lock order: procs_mu (set_active, and stop() around its flag; taken under
// lifecycle at most) -> the idle list (poke_if_idle, wakep).
#include "net/poller.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

void scheduler::launch(worker* w) {
    // Counted first: the new worker's own steal loop reads `launched`.
    launched.store(w->index + 1, std::memory_order_seq_cst);
    try {
        w->thread = std::thread([this, w] { worker_main(w); });
    } catch (...) {
        launched.store(w->index, std::memory_order_seq_cst);
        throw;
    }
    // No longer a slot without a thread; it counts itself while it sleeps retired.
    parked_workers.fetch_sub(1, std::memory_order_seq_cst);
}

unsigned scheduler::set_active(unsigned n) {
    lock_scope lk(procs_mu);
    const unsigned old = active.load(std::memory_order_relaxed);
    if (n == old || stopping.load(std::memory_order_seq_cst)) return old;
    for (unsigned i = launched.load(std::memory_order_relaxed); i < n; ++i) launch(workers[i]);
    active.store(n, std::memory_order_seq_cst);  // W1
    for (unsigned i = old; i < n; ++i) {         // back to work
        workers[i]->halt.store(false, std::memory_order_release);
        wake_retired(workers[i]);
    }
    for (unsigned i = n; i < old; ++i) {  // at their next look; idle ones now
        workers[i]->halt.store(true, std::memory_order_release);
        idle.poke_if_idle(workers[i]);
    }
    if (n > old) {
        wakep();     // work may wait in the global queue
        mon.poke();  // it may sleep deep, counting the woken ones as parked
    }
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
    while (goroutine* g = w->spawns.pop()) {
        push_global(g);
        moved = true;
    }
    if (moved) wakep();
    if (goroutine* g = nullptr; w->pinned.pop_batch(&g, 1)) {
        w->counters.picks_local.bump();  // as take_pinned counts it
        return g;
    }
    w->stacks.flush();
    // It may have been the idle timer watcher (or the poller's), poked out
    // of that sleep by set_active: the active workers may all sleep without
    // a timeout meanwhile, and the monitor sleeps deep when every worker
    // does. Hand the role to an active one.
    if (const std::int64_t d = next_deadline.load(std::memory_order_seq_cst); d != no_deadline)
        poke_for_timer(d);
    if (poller* p = poller::if_active(); p && p->has_waiters()) idle.poller_needed();
    w->retired.store(true, std::memory_order_seq_cst);  // R1
    std::atomic_thread_fence(std::memory_order_seq_cst);
    parked_workers.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
        const std::uint32_t seen = w->retire_word.load(std::memory_order_acquire);  // R2
        if (stopping.load(std::memory_order_seq_cst) ||
            w->index < active.load(std::memory_order_seq_cst) || !w->pinned.empty())  // R3
            break;
        futex_wait(&w->retire_word, seen);  // R4
    }
    parked_workers.fetch_sub(1, std::memory_order_seq_cst);
    w->retired.store(false, std::memory_order_relaxed);
    mon.poke();  // it may sleep deep, having counted this worker as parked
    return nullptr;
}

}  // namespace goro::detail
