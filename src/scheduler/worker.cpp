// scheduler/worker.cpp — the worker loop: find a goroutine, switch to it,
// finish what it asked for when it switches back (park, yield, exit), and
// sleep when there is nothing to do. The policy and the idle protocol are
// described in scheduler.hpp; the step labels (A1.., B1..) refer to it.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "goro/detail/spin_mutex.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;
void install_alt_stack() noexcept;
void remove_alt_stack() noexcept;

namespace {

constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();
// A pick out of every 61 looks at the global queue first (Go's number: prime,
// so it does not beat in step with other periodic patterns).
constexpr std::uint32_t global_check_period = 61;
// runnext may pass the turn on this many times in a row (Tokio's LIFO cap).
constexpr std::uint32_t runnext_cap = 3;
// Rounds over all victims a spinning worker makes before going idle.
constexpr int steal_rounds = 4;
// An idle worker watches its wake word this long before it sleeps in the
// kernel: work often comes back within microseconds (a goroutine spawning in
// a loop, a producer refilling a channel), and a wake that finds the worker
// still watching costs neither side a futex call or a context switch.
constexpr std::int64_t idle_spin_ns = 20'000;
// wake_word value while the worker sleeps in futex_wait (wakers must call
// futex_wake); 0 while it runs or watches, 1 and 2 are wakes (scheduler.hpp).
constexpr std::uint32_t wake_word_sleeping = 3;

std::uint64_t next_random(std::uint64_t& s) noexcept {
    // xorshift64*: cheap and good enough to pick steal victims and shuffle.
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

}  // namespace

void scheduler::worker_main(worker* w) {
    set_this_worker(w);
    init_thread_fiber(w->sched);
    install_alt_stack();
    while (goroutine* g = find_runnable(w)) execute(w, g);
    w->stacks.flush();
    remove_alt_stack();
    set_this_worker(nullptr);
}

void scheduler::execute(worker* w, goroutine* g) {
    w->current = g;
    g->state.store(g_state::running, std::memory_order_relaxed);
    switch_to(w->sched, g->ctx, g);
    // Back on the worker's own stack: g is suspended (or finished).
    w->current = nullptr;
    finish_switch(w, g);
}

void scheduler::finish_switch(worker* w, goroutine* g) {
    switch (g->action) {
        case switch_action::park:
            g->state.store(g_state::waiting, std::memory_order_relaxed);
            // Off g's stack now: a waker may ready g as soon as this unlocks.
            if (g->unlock) g->unlock(g->unlock_arg);
            break;
        case switch_action::yield:
            g->state.store(g_state::runnable, std::memory_order_relaxed);
            if (!w->rq.push(g)) push_global(g);
            break;
        case switch_action::exit:
            release_goroutine(w, g);
            break;
    }
}

void scheduler::ready(goroutine* g, bool spawned) noexcept {
    g->state.store(g_state::runnable, std::memory_order_relaxed);
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
    if (!w->current)
        push_local(w, g);
    else if (goroutine* old = w->runnext.exchange(g, std::memory_order_acq_rel))
        push_local(w, old);
    // Wake a helper for a spawn, or when two or more goroutines wait in the
    // local queue besides runnext: with just one, the running goroutine
    // usually blocks soon and this worker gets to it sooner than a woken
    // worker would (2-case select: 200 -> 140 ns with this threshold).
    if (spawned || w->rq.size() >= 2) wakep();
}

void scheduler::push_local(worker* w, goroutine* g) noexcept {
    if (w->rq.push(g)) return;
    // Full: half of it moves to the global queue.
    goroutine* batch[run_queue::capacity / 2];
    std::uint32_t n = w->rq.take_half(batch);
    for (std::uint32_t i = 0; i < n; ++i) push_global(batch[i]);
    if (!w->rq.push(g)) push_global(g);
}

void scheduler::push_global(goroutine* g) noexcept {
    global.enqueue(g);
    global_pending.fetch_add(1, std::memory_order_seq_cst);
}

void scheduler::wakep() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // A2
    if (nidle.load(std::memory_order_relaxed) == 0) return;
    std::int32_t none = 0;
    if (nspinning.load(std::memory_order_relaxed) != 0 ||
        !nspinning.compare_exchange_strong(none, 1, std::memory_order_seq_cst))
        return;
    worker* v = nullptr;
    {
        std::lock_guard lk(idle_mu);
        if (!idle.empty()) {
            v = idle.back();
            idle.pop_back();
            v->in_idle = false;
            nidle.fetch_sub(1, std::memory_order_seq_cst);
        }
    }
    if (!v) {
        nspinning.fetch_sub(1, std::memory_order_seq_cst);
        return;
    }
    wake_worker(v, 1);  // A3: it starts out spinning, counted above
}

void scheduler::wake_worker(worker* w, std::uint32_t how) noexcept {
    if (w->wake_word.exchange(how, std::memory_order_acq_rel) == wake_word_sleeping)
        futex_wake(&w->wake_word, 1);
}

std::uint32_t scheduler::await_wake(worker* w, std::int64_t deadline) noexcept {
    std::atomic<std::uint32_t>& word = w->wake_word;
    // Watch for a while (bounded; the clock is read every 16 pauses).
    const std::int64_t watch_until = std::min(now_ns() + idle_spin_ns, deadline);
    for (std::uint32_t i = 1;; ++i) {
        if (word.load(std::memory_order_acquire) != 0)
            return word.exchange(0, std::memory_order_acq_rel);
        cpu_relax();
        if ((i & 15) == 0 && now_ns() >= watch_until) break;
    }
    // Announce the sleep; a wake that came first makes the CAS fail. Both
    // sides use read-modify-writes of the one word, so either the waker sees
    // `sleeping` (and calls futex_wake) or we see its wake: none is lost.
    std::uint32_t seen = 0;
    if (!word.compare_exchange_strong(seen, wake_word_sleeping, std::memory_order_acq_rel))
        return word.exchange(0, std::memory_order_acq_rel);
    for (;;) {
        if (deadline == no_deadline) {
            futex_wait(&word, wake_word_sleeping);
        } else {
            std::int64_t left = deadline - now_ns();
            if (left <= 0) {
                seen = wake_word_sleeping;
                if (word.compare_exchange_strong(seen, 0, std::memory_order_acq_rel)) return 0;
                return word.exchange(0, std::memory_order_acq_rel);  // a wake beat the timeout
            }
            futex_wait_for(&word, wake_word_sleeping, left);
        }
        if (word.load(std::memory_order_acquire) != wake_word_sleeping)
            return word.exchange(0, std::memory_order_acq_rel);
    }
}

bool scheduler::remove_idle(worker* w) noexcept {
    std::lock_guard lk(idle_mu);
    if (!w->in_idle) return false;
    idle.erase(std::find(idle.begin(), idle.end(), w));
    w->in_idle = false;
    nidle.fetch_sub(1, std::memory_order_seq_cst);
    return true;
}

void scheduler::poke_for_timer(std::int64_t when) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (nspinning.load(std::memory_order_relaxed) > 0) return;  // it checks timers
    if (worker* wt = timer_watcher.load(std::memory_order_acquire)) {
        if (watcher_until.load(std::memory_order_acquire) <= when) return;
        if (remove_idle(wt)) wake_worker(wt, 2);
        return;
    }
    if (nidle.load(std::memory_order_relaxed) == 0) return;  // busy workers check timers
    worker* v = nullptr;
    {
        std::lock_guard lk(idle_mu);
        if (!idle.empty()) {
            v = idle.back();
            idle.pop_back();
            v->in_idle = false;
            nidle.fetch_sub(1, std::memory_order_seq_cst);
        }
    }
    if (v) wake_worker(v, 2);
}

bool scheduler::any_work(const worker* self) const noexcept {
    if (global_pending.load(std::memory_order_seq_cst) > 0) return true;
    for (worker* w : workers) {
        if (!w->rq.empty()) return true;
        if (w != self && w->runnext.load(std::memory_order_acquire)) return true;
    }
    return false;
}

goroutine* scheduler::steal(worker* w, bool take_runnext) noexcept {
    const unsigned n = nprocs;
    const unsigned start = static_cast<unsigned>(next_random(w->rng) % n);
    for (unsigned i = 0; i < n; ++i) {
        worker* v = workers[(start + i) % n];
        if (v == w) continue;
        if (goroutine* g = w->rq.steal_from(v->rq)) return g;
        if (take_runnext && v->rq.empty())
            if (goroutine* g = v->runnext.exchange(nullptr, std::memory_order_acq_rel)) return g;
    }
    return nullptr;
}

goroutine* scheduler::find_runnable(worker* w) {
    auto take_global = [&]() -> goroutine* {
        if (global_pending.load(std::memory_order_relaxed) <= 0) return nullptr;
        goroutine* batch[32];
        std::size_t n = global.try_dequeue_bulk(batch, 32);
        if (n == 0) return nullptr;
        global_pending.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_seq_cst);
        for (std::size_t i = 1; i < n; ++i)
            if (!w->rq.push(batch[i])) push_global(batch[i]);
        return batch[0];
    };
    auto stop_spinning = [&] {
        if (!w->spinning) return;
        w->spinning = false;
        // The last spinner found work: there may be more, so keep one looking.
        if (nspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep();
    };

    for (;;) {
        if (stopping.load(std::memory_order_acquire)) return nullptr;
        ++w->tick;
        if (w->tick % global_check_period == 0)
            if (goroutine* g = take_global()) {
                stop_spinning();
                return g;
            }
        // Timers: every 4th pick is enough (a pick is a few hundred ns);
        // reading the clock each time costs ~10% when many goroutines sleep.
        if ((w->tick & 3) == 0 && next_deadline.load(std::memory_order_relaxed) != no_deadline) {
            std::int64_t now = now_ns();
            if (next_deadline.load(std::memory_order_acquire) <= now) run_due_timers(now);
        }
        if (goroutine* g = w->runnext.load(std::memory_order_relaxed)) {
            if (w->runnext_streak < runnext_cap) {
                if ((g = w->runnext.exchange(nullptr, std::memory_order_acq_rel))) {
                    ++w->runnext_streak;
                    stop_spinning();
                    return g;
                }
            } else if ((g = w->runnext.exchange(nullptr, std::memory_order_acq_rel))) {
                if (!w->rq.push(g)) push_global(g);
            }
        }
        w->runnext_streak = 0;
        if (goroutine* g = w->rq.pop()) {
            stop_spinning();
            return g;
        }
        if (goroutine* g = take_global()) {
            stop_spinning();
            return g;
        }
        // Steal, if not too many others are already spinning.
        if (!w->spinning) {
            std::int32_t busy = static_cast<std::int32_t>(nprocs) - nidle.load();
            if (2 * nspinning.load() < busy) {
                w->spinning = true;
                nspinning.fetch_add(1, std::memory_order_seq_cst);
            }
        }
        if (w->spinning) {
            for (int round = 0; round < steal_rounds; ++round) {
                if (goroutine* g = steal(w, round == steal_rounds - 1)) {
                    stop_spinning();
                    return g;
                }
                if (goroutine* g = take_global()) {
                    stop_spinning();
                    return g;
                }
                cpu_relax();
            }
        }
        sleep_idle(w);
    }
}

void scheduler::sleep_idle(worker* w) {
    {
        std::lock_guard lk(idle_mu);  // B1
        idle.push_back(w);
        w->in_idle = true;
        nidle.fetch_add(1, std::memory_order_seq_cst);
    }
    if (w->spinning) {  // B2
        w->spinning = false;
        nspinning.fetch_sub(1, std::memory_order_seq_cst);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // B3

    auto leave = [&] {
        // Either take ourselves off the idle list, or someone popped us and
        // is about to (or did) set our wake word: take that wake-up.
        if (remove_idle(w)) return;
        if (await_wake(w, no_deadline) == 1) w->spinning = true;
    };

    std::int64_t deadline = next_deadline.load(std::memory_order_seq_cst);  // B4
    if (stopping.load(std::memory_order_acquire) || any_work(w) ||
        (deadline != no_deadline && deadline <= now_ns())) {
        leave();
        return;
    }
    bool watcher = false;
    if (deadline != no_deadline) {
        worker* none = nullptr;
        watcher = timer_watcher.compare_exchange_strong(none, w, std::memory_order_seq_cst);
        // Only the watcher writes watcher_until (a loser overwriting it hid an
        // earlier deadline from poke_for_timer once: a lost timer wake-up).
        if (watcher) watcher_until.store(deadline, std::memory_order_seq_cst);
        // Recheck: an earlier timer may have come in before we became watcher
        // (its adder may have read a stale watcher_until and not poked us).
        if (watcher && next_deadline.load(std::memory_order_seq_cst) < deadline) {
            timer_watcher.store(nullptr, std::memory_order_seq_cst);
            leave();
            return;
        }
        // Someone else watches, maybe for a later deadline than the one we
        // saw (a submitter that found us spinning left the timer to us):
        // poke it so it re-arms for ours.
        if (!watcher) {
            worker* wt = timer_watcher.load(std::memory_order_seq_cst);
            if (wt && watcher_until.load(std::memory_order_seq_cst) > deadline && remove_idle(wt))
                wake_worker(wt, 2);
        }
    }
    // B5 (the watcher only until the earliest deadline).
    std::uint32_t how = await_wake(w, watcher ? deadline : no_deadline);
    if (watcher) timer_watcher.store(nullptr, std::memory_order_seq_cst);
    if (how == 0) {
        leave();  // timed out
        return;
    }
    if (how == 1) w->spinning = true;
}

}  // namespace goro::detail
