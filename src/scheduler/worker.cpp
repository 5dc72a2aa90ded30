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
// How long a goroutine must have sat in another worker's runnext before a
// thief takes it (Go: 3 us, for the same reason; see steal_runnext).
constexpr std::int64_t runnext_grace_ns = 3'000;
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
    set_state(g, state_bit(g_state::runnable), g_state::running);
    switch_to(w->sched, g->ctx, g);
    // Back on the worker's own stack: g is suspended (or finished).
    w->current = nullptr;
    finish_switch(w, g);
}

// Finishes g's park on its worker's stack (park.hpp, step 5):
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

void scheduler::finish_switch(worker* w, goroutine* g) {
    switch (g->action) {
        case switch_action::park:
            finish_park(g);
            break;
        case switch_action::yield:
            set_state(g, state_bit(g_state::running), g_state::runnable);
            if (!w->rq.push(g)) push_global(g);
            break;
        case switch_action::exit:
            release_goroutine(w, g);
            break;
    }
}

void scheduler::ready(goroutine* g, bool spawned) noexcept {
    set_state(g, spawned ? state_bit(g_state::free) : state_bit(g_state::waiting),
              g_state::runnable);
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
    (void)spawned;
    // Always (Go's ready calls wakep): whatever the readier does next — spin,
    // make a blocking system call, wait on a std::future — an idle worker
    // comes to look. It takes g out of runnext only after runnext_grace_ns
    // (steal), so a readier that parks soon still runs g itself, warm.
    wakep();
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
        lock_scope lk(idle_mu);
        if (!idle.empty()) {
            v = idle.back();
            idle.pop_back();
            v->in_idle = false;
            nidle.fetch_sub(1, std::memory_order_seq_cst);
            GORO_ASSERT(nidle.load(std::memory_order_relaxed) >= 0, "idle: negative idle count");
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
    lock_scope lk(idle_mu);
    if (!w->in_idle) return false;
    idle.erase(std::find(idle.begin(), idle.end(), w));
    w->in_idle = false;
    nidle.fetch_sub(1, std::memory_order_seq_cst);
    GORO_ASSERT(nidle.load(std::memory_order_relaxed) >= 0, "idle: negative idle count");
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
        lock_scope lk(idle_mu);
        if (!idle.empty()) {
            v = idle.back();
            idle.pop_back();
            v->in_idle = false;
            nidle.fetch_sub(1, std::memory_order_seq_cst);
            GORO_ASSERT(nidle.load(std::memory_order_relaxed) >= 0, "idle: negative idle count");
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

// Takes v's runnext, but only if it is still the same goroutine after
// runnext_grace_ns: a goroutine readied by a running one usually runs on its
// worker within a microsecond (the readier parks), warm in that core's cache;
// stealing it at once would turn every ping-pong into a cross-core one. One
// still there after the grace is stuck behind a readier that does not park.
goroutine* scheduler::steal_runnext(worker* v) noexcept {
    goroutine* g = v->runnext.load(std::memory_order_acquire);
    if (!g) return nullptr;
    const std::int64_t until = now_ns() + runnext_grace_ns;
    for (std::uint32_t i = 1;; ++i) {
        cpu_relax();
        if ((i & 15) == 0) {
            if (v->runnext.load(std::memory_order_relaxed) != g) return nullptr;
            if (now_ns() >= until) break;
        }
    }
    if (v->runnext.compare_exchange_strong(g, nullptr, std::memory_order_acq_rel)) return g;
    return nullptr;
}

goroutine* scheduler::steal(worker* w, bool take_runnext) noexcept {
    const unsigned n = nprocs;
    const unsigned start = static_cast<unsigned>(next_random(w->rng) % n);
    for (unsigned i = 0; i < n; ++i) {
        worker* v = workers[(start + i) % n];
        if (v == w) continue;
        if (goroutine* g = w->rq.steal_from(v->rq)) return g;
        if (take_runnext && v->rq.empty())
            if (goroutine* g = steal_runnext(v)) return g;
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
        const std::int32_t was = nspinning.fetch_sub(1, std::memory_order_seq_cst);
        GORO_ASSERT(was >= 1, "idle: negative spinning count");
        if (was == 1) wakep();
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
        lock_scope lk(idle_mu);  // B1
        idle.push_back(w);
        w->in_idle = true;
        nidle.fetch_add(1, std::memory_order_seq_cst);
        GORO_ASSERT(nidle.load(std::memory_order_relaxed) <= static_cast<std::int32_t>(nprocs),
                    "idle: more idle workers than workers");
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
