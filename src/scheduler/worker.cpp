// scheduler/worker.cpp — the worker loop: find a goroutine, switch to it,
// finish what it asked for when it switches back (park, yield, exit), and
// sleep when there is nothing to do; and the direct switch from one
// goroutine to the next that skips the loop when it has nothing else to do
// (switch_out). The search order is in scheduler.hpp,
// one call per step in find_runnable; the idle protocol's step labels
// (A1.., B1..) refer to scheduler/idle.hpp.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "diagnostics/trace.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "net/poller.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

void install_alt_stack() noexcept;
void remove_alt_stack() noexcept;

namespace {

// A pick out of every 61 looks at the global queue first (Go's number: prime,
// so it does not beat in step with other periodic patterns).
constexpr std::uint32_t global_check_period = 61;
// runnext may pass the turn on this many times in a row (Tokio's LIFO cap).
constexpr std::uint32_t runnext_cap = 3;
// The spawn stack may pass the turn on this many times in a row while the
// local queue waits (take_spawned).
constexpr std::uint32_t spawn_streak_cap = 8;
// A thief takes at most this many of a spawn stack's entries besides the
// one it runs (steal_spawns).
constexpr std::uint32_t spawn_steal_max = 32;
// Rounds over all victims a spinning worker makes before going idle.
// (Leaving short queues alone, to keep lock-bound work on one core, was
// tried and rejected: spawn got 20-50% slower; docs/performance.md.)
constexpr int steal_rounds = 4;
// How long a goroutine must have sat in another worker's runnext before a
// thief takes it (Go: 3 us, for the same reason; see steal_runnext).
// Retuning it (0 to never) moved no workload beyond its noise
// (docs/performance.md, findings of the second evening session).
constexpr std::int64_t runnext_grace_ns = 3'000;

std::uint64_t next_random(std::uint64_t& s) noexcept {
    // xorshift64*: cheap and good enough to pick steal victims and shuffle.
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

// Spins for runnext_grace_ns while still() holds (looking every 16 spins);
// whether it held to the end. A thief's wait before taking a goroutine its
// victim probably runs next itself (steal_runnext, steal_spawns).
template <class F>
bool still_after_grace(F still) noexcept {
    const std::int64_t until = real_now_ns() + runnext_grace_ns;
    for (std::uint32_t i = 1;; ++i) {
        cpu_relax();
        if ((i & 15) == 0) {
            if (!still()) return false;
            if (real_now_ns() >= until) return true;
        }
    }
}

}  // namespace

void scheduler::worker_main(worker* w) {
    set_this_worker(w);
    init_thread_fiber(w->sched);
    // TSan over an uninstrumented goro: the worker's own fiber does
    // bookkeeping only (sanitizers/hooks.hpp).
    san::tsan_ignore_all_begin();
    install_alt_stack();
    while (goroutine* g = find_runnable(w)) execute(w, g);
    w->stacks.flush();
    san::tsan_ignore_all_end();
    // Every goroutine that ran here, before this thread's thread-local
    // destructors (TSan; released at each switch back: context_switch.cpp).
    san::tsan_acquire_at_exit(&w->sched);
    remove_alt_stack();
    set_this_worker(nullptr);
}

namespace {

// g was parking as its thread stopped being a worker: claim the park, so
// that no waker readies g into the scheduler, and run its unlock callback.
void release_lost_park(goroutine* g) noexcept {
    if (g->action != switch_action::park) return;
    claim(g);
    if (g->unlock) g->unlock(g->unlock_arg);
}

// A shutdown declared this worker lost (its goroutine g ran without blocking
// past the grace) just as g switched back after all: g is abandoned and
// counted so, and this thread is detached, no worker any more. It never runs anything again: a
// park's unlock callback runs (with g's park claimed first when possible,
// so that no waker readies it), an exit never gives the stack back. Then
// (with no lock held) the goroutine switch_out had picked to run next, put
// back in runnext, goes to the global queue for another worker.
[[noreturn]] void lost_worker_switched_back(scheduler* s, worker* w, goroutine* g) noexcept {
    release_lost_park(g);
    if (goroutine* n = w->runnext.exchange(nullptr, std::memory_order_acq_rel)) {
        s->push_global(n);
        s->wakep();
    }
    freeze_lost_thread();
}

}  // namespace

// g, given up on as a spinner, was about to park or yield as its thread was
// made a plain thread. A yield returns: g goes on as a plain thread's code.
// A park cannot become a thread's park (its waiters would ready g, a
// goroutine, into the scheduler): as lost_worker_switched_back does, the
// park is claimed so that no waker readies g, its unlock callback runs, and
// the thread sleeps for ever.
void switch_on_forgotten_thread(goroutine* g) noexcept {
    if (g->action != switch_action::park) return;
    release_lost_park(g);
    freeze_lost_thread();
}

void scheduler::execute(worker* w, goroutine* g) {
    // `runs` before `current` (release): a shutdown's spinner watch that
    // reads g in `current` (acquire) then reads this run's count, and does
    // not take g for the goroutine it saw run too long (lifecycle.cpp).
    w->runs.store(++w->runs_local, std::memory_order_relaxed);
    w->current.store(g, std::memory_order_release);
    set_state(g, state_bit(g_state::runnable), g_state::running);
    if (tracing()) [[unlikely]]
        trace_run_begin(w, g);
    // Back on the worker's own stack when a goroutine switches to it: g, or
    // the last of the goroutines that g and its successors switched to
    // directly (switch_out). It is suspended (or finished). An exchange,
    // against a shutdown that gives up on it (it tags `current` with a CAS,
    // lifecycle.cpp): either it tagged the goroutine first, and this thread
    // is lost, or this exchange came first, and its CAS fails. (A plain
    // store measured no faster on ping-pong, yield or skynet, so no
    // asymmetric fence replaces it: docs/performance.md.)
    auto* back = static_cast<goroutine*>(switch_to(w->sched, g->ctx, nullptr));
    if (w->current.exchange(nullptr, std::memory_order_acq_rel) != back) [[unlikely]]
        lost_worker_switched_back(this, w, back);
    if (tracing()) [[unlikely]]
        trace_run_end(w, back);
    finish_switch(w, back);
}

namespace {

// Direct switches are off under TSan over an uninstrumented goro: there a
// goroutine acquires its worker's clock as it is switched in, and goro's
// bookkeeping after a switch (finish_switch) runs on the worker's fiber,
// which TSan ignores (sanitizers/hooks.hpp); on the next goroutine's fiber
// it would be seen, without the locks that order it.
inline bool direct_switch_allowed() noexcept {
#if defined(GORO_INSTRUMENTED_TSAN)
    return true;
#else
    return !san::tsan();
#endif
}

}  // namespace

// What find_runnable would return right now, when its periodic steps (1, 2
// and the network poll) have nothing to do at this pick: steps 3 and 4,
// runnext and the local queue. `loop`: the pick is the loop's to make (a
// periodic step is due, the worker is halted — retired or stopping — or
// the pick would take a lock); otherwise null when nothing is at hand here.
// It takes no lock: it runs before the leaving goroutine's switch, while
// that one may still hold the lock its park's unlock callback releases
// after the switch — a leaf such as goro::blocking(ctx, fn)'s call lock
// (lock_rank.hpp), under which the pinned queue's or the global queue's
// lock may not be taken. So a pinned goroutine queued here (steps 4a/4b),
// or a runnext that must go to a full local queue's overflow (step 3 at
// its cap), leaves the pick to the loop.
goroutine* scheduler::pick_next_directly(worker* w, bool& loop) noexcept {
    loop = true;
    if (!direct_switch_allowed()) [[unlikely]]
        return nullptr;
    if (w->halt.load(std::memory_order_acquire)) [[unlikely]]
        return nullptr;
    const std::uint32_t tick = w->tick + 1;
    if (tick % global_check_period == 0 || (tick & 63) == 0) return nullptr;
    if ((tick & 3) == 0 && next_deadline.load(std::memory_order_relaxed) != no_deadline)
        return nullptr;
    if (!w->pinned.empty()) [[unlikely]]
        return nullptr;
    if (w->runnext_streak >= runnext_cap && w->rq.size() >= run_queue::capacity &&
        w->runnext.load(std::memory_order_relaxed)) [[unlikely]]
        return nullptr;  // only this thread pushes: the push in take_runnext cannot fail
    loop = false;
    w->tick = tick;
    goroutine* g = take_runnext(w);                               // 3
    if (!g) g = take_spawned(w);                                  // 3b
    if (!g && (g = w->rq.pop())) w->counters.picks_local.bump();  // 4
    return g;
}

// g leaves w: straight to the next goroutine n when one is at hand, which
// then finishes g's switch on its own stack (finish_direct_switch), else to
// the worker's loop. A ping-pong hand-off is then one jump instead of two,
// without a pass through find_runnable (Go's park_m calls schedule() on
// the g0 stack instead: two jumps). `current` moves from g to n with a CAS
// against a shutdown that gives up on g (execute): if it tagged g first,
// this thread is lost, n goes back to runnext (empty after the pick; no
// lock here: see pick_next_directly), and g switches to the loop, which
// runs g's unlock callback, hands n to the global queue for another worker
// and freezes the thread (lost_worker_switched_back).
// A yield with nothing else at hand and no periodic step due does not
// switch at all: the loop would pick g again, from the local queue.
void* scheduler::switch_out(worker* w, goroutine* g, bool exiting) noexcept {
    bool loop;
    if (goroutine* n = pick_next_directly(w, loop)) {
        // From the CAS to the jump this stack is still g's while `current`
        // says n: a stack overflow there (the switch's frames are the
        // park's deepest) is g's, for the SIGSEGV handler. Cleared by n,
        // first thing (finish_direct_switch), or below.
        w->leaving.store(g, std::memory_order_relaxed);
        w->runs.store(++w->runs_local, std::memory_order_relaxed);  // before `current`: execute
        goroutine* expected = g;
        if (w->current.compare_exchange_strong(expected, n, std::memory_order_acq_rel)) [[likely]] {
            set_state(n, state_bit(g_state::runnable), g_state::running);
            if (tracing()) [[unlikely]] {
                trace_run_end(w, g);
                trace_run_begin(w, n);
            }
            return switch_to(g->ctx, n->ctx, g, exiting);
        }
        w->leaving.store(nullptr, std::memory_order_relaxed);
        w->runnext.store(n, std::memory_order_release);
    } else if (!loop && g->action == switch_action::yield && !tracing()) {
        // Counted as the loop's pick from the local queue would be.
        w->counters.picks_local.bump();
        w->runs.store(++w->runs_local, std::memory_order_relaxed);
        return nullptr;
    }
    return switch_to(g->ctx, w->sched, g, exiting);
}

// On the stack of the goroutine switched in, before anything else: what
// execute does after its switch, for the goroutine that switched here
// directly (a direct switch never leaves its thread, so this_worker() is
// the worker both ran on).
void finish_direct_switch(goroutine* prev) noexcept {
    worker* w = this_worker();
    w->leaving.store(nullptr, std::memory_order_relaxed);  // this stack is ours now
    w->owner->finish_switch(w, prev);
}

// Finishes g's park off g's stack, on its worker's or on the goroutine g
// switched to directly (park.hpp, step 5):
//   1. read g's park word (episode e) and mode while g is surely suspended;
//   2. run the unlock callback: from here a waker may claim and ready g, and
//      g may run elsewhere — g's fields other than its word are off limits;
//   3. mark episode e parked with a seq_cst CAS (fails harmlessly if a waker
//      claimed e, or if g has moved on to a later episode);
//   4. seq_cst: read the shutdown flag. Shutdown sets the flag, then scans
//      park words (both seq_cst): either it sees the parked bit and claims g,
//      or step 4 sees the flag and claims g here. Both may try; the CAS on
//      the word lets one win.
void scheduler::finish_park(goroutine* g) noexcept {
    set_state(g, state_bit(g_state::running), g_state::waiting);
    std::uint64_t v = g->word.load(std::memory_order_relaxed);  // 1
    const std::uint64_t bit = g->park_bit;
    if (g->unlock) g->unlock(g->unlock_arg);  // 2
    if (v & park_bits::claimed) return;
    const std::uint64_t parked = v | bit;
    if (!g->word.compare_exchange_strong(v, parked, std::memory_order_seq_cst)) return;  // 3
    if (bit == park_bits::parked && shutting_down()) claim_for_unwind(g, parked);        // 4
}

bool scheduler::claim_for_unwind(goroutine* g, std::uint64_t parked) noexcept {
    if (!g->word.compare_exchange_strong(parked, parked | park_bits::claimed,
                                         std::memory_order_acq_rel))
        return false;
    g->unwind_requested = true;
    ready(g, false);
    return true;
}

void scheduler::finish_switch(worker* w, goroutine* g) noexcept {
    switch (g->action) {
        case switch_action::park:
            finish_park(g);
            break;
        case switch_action::yield:
            set_state(g, state_bit(g_state::running), g_state::runnable);
            if (g->pinned_to) [[unlikely]] {
                w->pinned.push(g);  // locked to this worker (lock_os_thread)
                break;
            }
            if (!w->rq.push(g)) push_global(g);
            // Others wait here besides the goroutine about to run (the one
            // switched in directly, or one the loop will pick): if a worker
            // sleeps, wake one to take some. Without it two goroutines
            // yielding on one worker stayed there while another slept (the
            // spinner woken by their spawn had looked too early): yield at
            // procs=2 ran at 40 ns or at 6 ns per yield, by luck.
            if (idle.idle_count() != 0 &&
                w->rq.size() > (w->current.load(std::memory_order_relaxed) ? 0u : 1u))
                wakep();
            break;
        case switch_action::exit:
            release_goroutine(w, g);
            break;
        case switch_action::yield_to_global:
            set_state(g, state_bit(g_state::running), g_state::runnable);
            if (g->pinned_to) [[unlikely]]
                w->pinned.push(g);
            else
                push_global(g);
            break;
    }
}

void scheduler::ready(goroutine* g, bool spawned) noexcept {
    if (tracing()) [[unlikely]]
        trace_readied(g, spawned);  // before g is published: it may run at once
    set_state(g, spawned ? state_bit(g_state::free) : state_bit(g_state::waiting),
              g_state::runnable);
    if (g->pinned_to) [[unlikely]]
        return ready_pinned(g);
    worker* w = this_worker();
    if (!w) {
        push_global(g);
        wakep();
        return;
    }
    // A1. From the worker's own loop (due timers) no goroutine is handing
    // off: the local queue's tail, which keeps a batch of timers that came
    // due together in deadline order. From a goroutine: runnext, and the one
    // it displaces to the local queue.
    // A spawn from a goroutine: the spawn stack (step 3b; spawn_stack.hpp),
    // except in a bubble: there nothing but the monitor's rescue, which
    // depends on real time, would start an older spawn under a goroutine
    // that spawns its successor and ends (a livelock).
    if (!w->current.load(std::memory_order_relaxed))
        push_local(w, g);
    else if (spawned && !virtual_time && w->spawns.push(g))
        ;
    else if (goroutine* old = w->runnext.exchange(g, std::memory_order_acq_rel))
        push_local(w, old);
    // Wake a helper for a spawn, or when two or more goroutines wait in the
    // local queue besides runnext: with just one, the running goroutine
    // usually blocks soon and this worker gets to it sooner than a woken
    // worker would. Waking on every ready, as Go does, doubled a ping-pong
    // round trip here (150 -> 300 ns: the woken worker spins on this one's
    // runnext line); a readier that does not block soon is the monitor's
    // job (monitor.hpp). Not waking for a spawn measured 2-3x faster on
    // spawn rows on the VM of 2026-11-27, and was not taken: a `go` followed
    // by a long computation would then wait for the monitor, ~10 ms
    // (docs/performance.md, fifth session).
    if (spawned || w->rq.size() >= 2) wakep();
}

// A1: the pinned queue of g's worker p. If p is not the caller, p may sleep
// in the idle list: A2 the fence, A3 poke it if any worker is idle. p's
// B1 (idle count + 1) and B3 fence come before its B4, which looks at its
// pinned queue: either A3 sees p idle, or p's B4 sees g.
void scheduler::ready_pinned(goroutine* g) noexcept {
    worker* p = g->pinned_to;
    p->pinned.push(g);
    if (this_worker() == p) return;  // p runs this: it looks before it sleeps
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (idle.idle_count() != 0) idle.poke_if_idle(p);
    wake_retired(p);  // p may sleep retired (goro::set_procs) instead
}

void scheduler::push_local(worker* w, goroutine* g) noexcept {
    if (w->rq.push(g)) return;
    // Full: half of it moves to the global queue, and the next go() on this
    // worker yields to them (spawn_yield_point).
    w->spilled = true;
    goroutine* batch[run_queue::capacity / 2];
    std::uint32_t n = w->rq.take_half(batch);
    static_assert(run_queue::capacity / 2 <= global_queue::block_slots);
    global.push_batch(batch, n);
    if (!w->rq.push(g)) push_global(g);
}

void scheduler::push_global(goroutine* g) noexcept {
    global.push(g);
}

bool scheduler::any_work(const worker* self) const noexcept {
    if (!global.empty()) return true;
    for (worker* w : workers) {
        if (!w->rq.empty() || !w->spawns.empty()) return true;
        if (w != self && w->runnext.load(std::memory_order_acquire)) return true;
        // Pinned goroutines are work only for their own worker.
        if ((w == self || !self) && !w->pinned.empty()) return true;
    }
    return false;
}

// Takes v's runnext, but only if it is still the same goroutine after
// runnext_grace_ns: a goroutine readied by a running one usually runs on its
// worker within a microsecond (the readier parks), warm in that core's cache;
// stealing it at once would turn every ping-pong into a cross-core one. One
// still there after the grace is stuck behind a readier that does not park.
goroutine* scheduler::steal_runnext(worker* v) noexcept {
    goroutine* g = v->runnext.load(std::memory_order_acquire);
    if (!g) return nullptr;
    if (!still_after_grace([&] { return v->runnext.load(std::memory_order_relaxed) == g; }))
        return nullptr;
    if (v->runnext.compare_exchange_strong(g, nullptr, std::memory_order_acq_rel)) return g;
    return nullptr;
}

// The oldest of v's spawn stack to run, and up to half of the rest (at most
// spawn_steal_max) into w's own, oldest first: one entry at a time, a
// worker helping a spawner at procs=2 stole for each goroutine it ran
// (spawn: 290 -> 370 ns). A lone entry is treated as runnext is (Go's
// newproc puts the new goroutine there): taken only in the last round and
// only if it is still there after runnext_grace_ns, so that a goroutine
// that spawns one and then waits for it runs it on its own worker. Taken
// at once, the spinner woken by the spawn took it every time, and under
// load its thread could be descheduled for milliseconds before it ran
// (Procs/Io.ReadinessWakesAParkedGoroutine/8 failed twice under ASan).
goroutine* scheduler::steal_spawns(worker* w, worker* v, bool take_lone) noexcept {
    if (v->spawns.size() == 1) {
        if (!take_lone) return nullptr;
        const std::int64_t taken = v->spawns.taken_from_bottom();
        if (!still_after_grace(
                [&] { return v->spawns.taken_from_bottom() == taken && !v->spawns.empty(); }))
            return nullptr;
    }
    goroutine* g = v->spawns.steal();
    if (!g) return nullptr;
    const std::uint32_t more = std::min(v->spawns.size() / 2, spawn_steal_max);
    for (std::uint32_t i = 0; i < more; ++i) {
        goroutine* h = v->spawns.steal();
        if (!h) break;
        if (!w->spawns.push(h)) push_local(w, h);
    }
    return g;
}

// Every launched worker is a victim, retired ones too (goro::set_procs):
// they hand their queues on when they retire, but one retired while it runs
// a goroutine keeps its queue until that goroutine switches out.
goroutine* scheduler::steal(worker* w, bool take_runnext) noexcept {
    const unsigned n = launched.load(std::memory_order_relaxed);
    const unsigned start = static_cast<unsigned>(next_random(w->rng) % n);
    for (unsigned i = 0; i < n; ++i) {
        worker* v = workers[(start + i) % n];
        if (v == w) continue;
        w->counters.steal_attempts.bump();
        goroutine* g = w->rq.steal_from(v->rq);
        if (!g) g = steal_spawns(w, v, take_runnext);
        if (!g && take_runnext && v->rq.empty() && v->spawns.empty()) g = steal_runnext(v);
        if (g) {
            w->counters.steal_successes.bump();
            w->counters.picks_stolen.bump();
            if (tracing()) [[unlikely]]
                trace_steal(w, v, g);
            return g;
        }
    }
    return nullptr;
}

// The search, one call per step of the order in scheduler.hpp. Whatever
// step returns a goroutine, its worker stops spinning (and, if it was the
// last spinner, wakes another: there may be more work).
goroutine* scheduler::find_runnable(worker* w) {
    for (;;) {
        // Stopping, or retired by goro::set_procs (procs.cpp): one flag.
        if (w->halt.load(std::memory_order_acquire)) [[unlikely]] {
            if (stopping.load(std::memory_order_acquire)) return nullptr;
            if (w->index >= active.load(std::memory_order_relaxed)) {
                if (goroutine* g = retired_pick(w)) return g;
                continue;
            }
            // Active again: the raise clears the flag right after.
        }
        ++w->tick;
        goroutine* g = take_global_periodically(w);                   // 1
        if (!g) run_due_timers_sometimes(w);                          // 2
        if (!g) g = take_runnext(w);                                  // 3
        if (!g) g = take_spawned(w);                                  // 3b
        if (!g) g = take_pinned_first(w);                             // 4a
        if (!g && (g = w->rq.pop())) w->counters.picks_local.bump();  // 4
        if (!g) g = take_pinned(w);                                   // 4b
        if (!g) g = take_global(w);                                   // 5
        if (!g) g = steal_work(w);                                    // 6
        if (g) {
            if (w->spinning) idle.found_work(w);
            return g;
        }
        // A look that found nothing and then slept does not count for the
        // periodic steps. A look that returns without sleeping (a timer due,
        // work seen) does count: the next one must get to the due timers'
        // step.
        if (virtual_time) [[unlikely]] {
            idle_look_in_a_bubble(w);
            continue;
        }
        if (park_worker(w)) --w->tick;  // 7
    }
}

// A bubble's schedule must not depend on how often its worker looked and
// found nothing: that depends on real time (the monitor's pokes; run()'s
// caller pushing main while the worker's first looks run, which made a look
// return without sleeping and count). With each such look counted, the same
// seed gave different orders on a loaded machine
// (Break21Bubble.SpawnTreeScheduleIsDeterministic, twice). So no failed
// look counts; the due timers the periodic step may have skipped run here
// instead (the virtual clock moves only in advance_virtual_clock, which
// fires what it reaches, so this finds timers due only when an outside wait
// kept the clock from moving on: they must not wait for a counted look).
void scheduler::idle_look_in_a_bubble(worker* w) noexcept {
    --w->tick;
    const std::int64_t now = now_ns();
    if (next_deadline.load(std::memory_order_acquire) <= now) {
        run_due_timers(now);
        return;
    }
    park_worker(w);  // 7
}

// 1. Every 61st pick, the global queue first, so it cannot starve.
[[gnu::always_inline]] inline goroutine* scheduler::take_global_periodically(worker* w) {
    return w->tick % global_check_period == 0 ? take_global(w) : nullptr;
}

// 2. Due timers: every 4th pick is enough (a pick is a few hundred ns);
// reading the clock each time costs ~10% when many goroutines sleep. And
// every 64th pick, network readiness without blocking, at most every
// 100 us across workers (net/poller.hpp): so that I/O is never stuck
// behind CPU-bound goroutines while no worker is idle to sleep in epoll.
[[gnu::always_inline]] inline void scheduler::run_due_timers_sometimes(worker* w) noexcept {
    if ((w->tick & 63) == 0)
        if (poller* p = poller::if_active()) p->poll_if_due(real_now_ns());
    if ((w->tick & 3) != 0 || next_deadline.load(std::memory_order_relaxed) == no_deadline) return;
    std::int64_t now = now_ns();
    if (next_deadline.load(std::memory_order_acquire) <= now) run_due_timers(now);
}

// 3. runnext, unless it has passed the turn on runnext_cap times in a row:
// then its goroutine goes to the tail of the local queue.
[[gnu::always_inline]] inline goroutine* scheduler::take_runnext(worker* w) noexcept {
    if (w->runnext.load(std::memory_order_relaxed)) {
        if (w->runnext_streak < runnext_cap) {
            if (goroutine* g = w->runnext.exchange(nullptr, std::memory_order_acq_rel)) {
                ++w->runnext_streak;
                w->counters.picks_runnext.bump();
                return g;
            }
        } else if (goroutine* g = w->runnext.exchange(nullptr, std::memory_order_acq_rel)) {
            if (!w->rq.push(g)) push_global(g);
        }
    }
    w->runnext_streak = 0;
    return nullptr;
}

// 3b. The newest goroutine spawned here that has not run yet, unless the
// spawn stack has had the turn spawn_streak_cap times in a row while the
// local or the pinned queue waited: then theirs (goroutines readied there
// would otherwise wait for a whole tree of spawns to finish, or forever
// under a goroutine that spawns its successor and ends: a goroutine locked
// to this worker did, tests/break21_test.cpp).
[[gnu::always_inline]] inline goroutine* scheduler::take_spawned(worker* w) noexcept {
    const auto others_wait = [w] { return !w->rq.empty() || !w->pinned.empty(); };
    if (w->spawn_streak >= spawn_streak_cap) {
        w->spawn_streak = 0;
        if (others_wait()) return nullptr;
    }
    goroutine* g = w->spawns.pop();
    if (g) {
        w->spawn_streak = others_wait() ? w->spawn_streak + 1 : 0;
        w->counters.picks_spawned.bump();
    }
    return g;
}

// 4b. A goroutine locked to this worker (one relaxed load when none).
[[gnu::always_inline]] inline goroutine* scheduler::take_pinned(worker* w) noexcept {
    goroutine* g = nullptr;
    // Counted with the local queue's picks (goro::worker_stats): the
    // pinned queue is this worker's queue for the goroutines locked to it.
    if (w->pinned.pop_batch(&g, 1)) w->counters.picks_local.bump();
    return g;
}

// 4a. The same ahead of the local queue, except right after a 4a pick: then
// it is the local queue's turn. (Alternating on the pick counter instead
// starved the pinned queue: a runnext chain capped at 3 always ends on the
// same parity.)
[[gnu::always_inline]] inline goroutine* scheduler::take_pinned_first(worker* w) noexcept {
    if (w->took_pinned) {
        w->took_pinned = false;
        return nullptr;
    }
    goroutine* g = take_pinned(w);
    w->took_pinned = g != nullptr;
    return g;
}

// 5. A batch from the global queue: one to run, the rest to the local queue
// — no more than it has room for. A rest that did not fit went back to the
// global queue's tail, behind the goroutine that ran: with the local queue
// kept full (goroutines that yield in a loop), the periodic pick (1) then
// ran the same few in turn and the others queued there never
// (Break16.GlobalQueueIsReachedWhileTheLocalQueueStaysFull). Thieves only
// take from the local queue: the room seen here can only grow.
[[gnu::always_inline]] inline goroutine* scheduler::take_global(worker* w) noexcept {
    goroutine* batch[32];
    const std::size_t room =
        run_queue::capacity - std::min<std::size_t>(w->rq.size(), run_queue::capacity);
    std::size_t n = global.pop_batch(batch, std::min<std::size_t>(32, room + 1));
    if (n == 0) return nullptr;
    if (w->index >= active.load(std::memory_order_relaxed)) [[unlikely]] {
        // Retired since its first step: all of it back (see unless_retired;
        // the local queue must stay empty for the steal that may follow).
        for (std::size_t i = 0; i < n; ++i) push_global(batch[i]);
        wakep();
        return nullptr;
    }
    w->counters.picks_global.bump();
    for (std::size_t i = 1; i < n; ++i)
        if (!w->rq.push(batch[i])) push_global(batch[i]);
    return batch[0];
}

// 6. Steal half of another worker's queue (in the last round also a runnext
// that has sat there over the grace), if not too many others spin already.
goroutine* scheduler::steal_work(worker* w) noexcept {
    if (!idle.try_start_spinning(w)) return nullptr;
    for (int round = 0; round < steal_rounds; ++round) {
        if (goroutine* g = steal(w, round == steal_rounds - 1)) return unless_retired(w, g);
        if (goroutine* g = take_global(w)) return g;
        cpu_relax();
    }
    return nullptr;
}

// A goroutine stolen from another worker by a worker that goro::set_procs
// retired since its first step in find_runnable goes to the global queue
// (the rest of what it took, in its local queue, moves when it retires; a
// batch from the global queue goes back whole: take_global). So a goroutine made runnable
// after set_procs(n) returned runs on workers [0, n) only (its pusher's
// release, the taker's acquire, and coherence make the taker see the new
// count); one made runnable here, by this worker, is covered by the first
// step itself. Off the ping-pong path: only on picks from elsewhere.
goroutine* scheduler::unless_retired(worker* w, goroutine* g) noexcept {
    if (w->index < active.load(std::memory_order_relaxed)) [[likely]]
        return g;
    push_global(g);
    wakep();
    return nullptr;
}

// 7. Nothing found: the idle protocol's B1-B5 (scheduler/idle.hpp). True if it slept.
// In a bubble, first its own step: the virtual clock jumps to the next
// timer when every goroutine is blocked (diagnostics/deadlock.cpp); when
// something outside may still wake one, it sleeps until woken, or poked by
// the monitor (every 2 ms), and looks again.
bool scheduler::park_worker(worker* w) noexcept {
    if (virtual_time && advance_virtual_clock(w)) return false;
    const bool was_spinning = w->spinning;
    idle.enter(w);                                                          // B1-B3
    std::int64_t deadline = next_deadline.load(std::memory_order_seq_cst);  // B4
    // Retired meanwhile (goro::set_procs): do not sleep here, where a wake
    // or the timer watcher's role would be wasted on it. set_active lowers
    // `active` (seq_cst), then pokes the idle ones: it sees this worker
    // listed (B1) or this sees its store.
    if (stopping.load(std::memory_order_acquire) ||
        w->index >= active.load(std::memory_order_seq_cst) || any_work(w) ||
        (deadline != no_deadline && deadline <= now_ns())) {
        idle.leave(w);
        // A spinner retired meanwhile will not take the work whose
        // submitters woke nobody because it spun (unless_retired and
        // take_global's pushes among them): hand the search on, as the
        // last spinner that finds work does.
        if (was_spinning && w->index >= active.load(std::memory_order_seq_cst)) wakep();
        mon.poke();  // it may have seen every worker idle meanwhile
        return false;
    }
    // The virtual clock never reaches a deadline by itself: sleep without
    // one (the monitor pokes an idle bubble worker every 2 ms).
    if (virtual_time) deadline = no_deadline;
    idle.sleep(w, deadline);  // B5
    mon.poke();               // it may sleep deep while every worker is idle
    return true;
}

}  // namespace goro::detail
