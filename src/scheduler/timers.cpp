// scheduler/timers.cpp — starting, stopping and firing timers: one heap on
// `when` for the whole runtime (timer_heap.hpp), guarded by timer_mu (a
// spin_mutex: every hold is a heap operation of a few hundred ns, where a
// futex sleep and wake would cost microseconds). Workers run due timers from
// their loop; the idle worker that is the timer watcher sleeps until the
// earliest deadline (scheduler.hpp, B4/B5), so N sleeping goroutines cost N
// heap entries and no OS timer at all.
//
// Invariants (under timer_mu): a node is in the heap iff heap_slot != npos
// (timer_heap.hpp keeps the positions). next_deadline mirrors the top (max
// when empty). A node being fired has firing == true and is not in the heap
// unless its fire re-started it. fire runs with no lock held. A node due at
// time_point::max() (int64 max ns, the same key as no_deadline) never comes
// due: it is "never" (goro/detail/deadline.hpp).
#include <limits>
#include <thread>

#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

thread_local timer_node* firing_now = nullptr;

std::int64_t to_ns(clock::time_point tp) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

// A periodic node's next deadline: the first multiple of the period after
// now (a slow reader loses ticks instead of getting a burst), or "never"
// (time_point::max()) when that is past the end of the clock. Requires
// when <= now and period > 0; computed in 128 bits, so it cannot overflow.
clock::time_point next_period(clock::time_point when, clock::duration period,
                              std::int64_t now) noexcept {
    __extension__ typedef __int128 wide;
    const wide w = when.time_since_epoch().count(), p = period.count();
    const wide next = w + ((wide(now) - w) / p + 1) * p;
    if (next >= wide(clock::duration::max().count())) return clock::time_point::max();
    return clock::time_point(clock::duration(static_cast<clock::duration::rep>(next)));
}

}  // namespace

// The heap's storage grows and shrinks under timer_mu: goro's bookkeeping,
// ignored by TSan (sanitizers/hooks.hpp) in timer_add and timer_remove.
void scheduler::timer_add(timer_node* t) {
    san::ignore_scope bookkeeping;
    bool earliest;
    std::int64_t when = to_ns(t->when);
    {
        lock_scope lk(timer_mu);
        if (timer_heap::contains(t)) timers.remove(t);
        t->cancelled = false;
        t->outlives_run = !run_is_active();
        timers.push(t, when);
        // Closed (end of shutdown): kept for clear_timers, never fired.
        earliest = !timers_closed && timers.top() == t;
        if (!timers_closed) next_deadline.store(timers.top_when(), std::memory_order_seq_cst);
    }
    if (earliest) poke_for_timer(when);
}

bool scheduler::timer_remove(timer_node* t) noexcept {
    san::ignore_scope bookkeeping;
    bool was_pending = false;
    {
        lock_scope lk(timer_mu);
        if (timer_heap::contains(t)) {
            timers.remove(t);
            was_pending = true;
            next_deadline.store(timers.empty() ? no_deadline : timers.top_when(),
                                std::memory_order_seq_cst);
        }
        if (t->firing.load(std::memory_order_relaxed)) t->cancelled = true;
    }
    // Wait out a fire in progress on another thread (fire is short and never
    // blocks), unless we are that fire.
    if (firing_now != t)
        while (t->firing.load(std::memory_order_acquire)) std::this_thread::yield();
    return was_pending;
}

void scheduler::run_due_timers(std::int64_t now) noexcept {
    constexpr std::size_t batch_max = 64;
    timer_node* batch[batch_max];
    std::size_t n = 0;
    {
        lock_scope lk(timer_mu);
        if (timers_closed) return;
        n = timers.pop_due(now, batch, batch_max);
        fires_running.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) batch[i]->firing.store(true, std::memory_order_relaxed);
        next_deadline.store(timers.empty() ? no_deadline : timers.top_when(),
                            std::memory_order_seq_cst);
    }
    for (std::size_t i = 0; i < n; ++i) {
        timer_node* t = batch[i];
        const bool periodic = t->period.count() > 0;
        void (*release_hook)(timer_node*) = t->release;
        firing_now = t;
        t->fire(t);
        firing_now = nullptr;
        if (!periodic) {
            // One-shot: nothing to re-arm, so no lock (fire never restarts
            // its own node). After this store the owner may free the node.
            t->firing.store(false, std::memory_order_release);
            if (release_hook) release_hook(t);
            continue;
        }
        bool rearm = false, rearm_any = false;
        std::int64_t rearm_when = 0;
        void (*release)(timer_node*) = release_hook;
        {
            lock_scope lk(timer_mu);
            rearm_any = timer_heap::contains(t);  // fire restarted it
            if (!t->cancelled && !rearm_any) {
                t->when = next_period(t->when, t->period, now);
                rearm_when = to_ns(t->when);
                timers.push(t, rearm_when);
                next_deadline.store(timers.top_when(), std::memory_order_seq_cst);
                rearm = timers.top() == t;
                rearm_any = true;
            }
            t->cancelled = false;
            t->firing.store(false, std::memory_order_release);
        }
        // Re-armed or not, the node may be gone once firing is false, unless
        // we still own it (not re-armed: release is our last touch).
        if (!rearm_any && release) release(t);
        if (rearm) poke_for_timer(rearm_when);
    }
    fires_running.fetch_sub(1, std::memory_order_release);
}

void scheduler::close_timers() noexcept {
    {
        lock_scope lk(timer_mu);
        timers_closed = true;
        next_deadline.store(no_deadline, std::memory_order_seq_cst);  // nobody waits for them
    }
    while (fires_running.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void scheduler::take_timers(std::vector<timer_node*>& out) {
    lock_scope lk(timer_mu);
    out.reserve(out.size() + timers.size());
    timers.clear([&](timer_node* t) { out.push_back(t); });
    next_deadline.store(no_deadline, std::memory_order_seq_cst);
}

void scheduler::clear_timers() noexcept {
    std::vector<timer_node*> dropped;
    {
        lock_scope lk(timer_mu);
        dropped.reserve(timers.size());
        timers.clear([&](timer_node* t) { dropped.push_back(t); });
        next_deadline.store(no_deadline, std::memory_order_seq_cst);
    }
    for (timer_node* t : dropped)
        if (t->release) t->release(t);
}

void timer_start(timer_node* t, clock::time_point when) {
    t->when = when;
    runtime_use use(true);
    use.get()->timer_add(t);
}

void timer_settle(timer_node* t) noexcept {
    if (firing_now == t) return;
    while (t->firing.load(std::memory_order_acquire)) std::this_thread::yield();
}

bool timer_stop(timer_node* t) noexcept {
    runtime_use use(false);
    if (!use.get()) return false;
    return use.get()->timer_remove(t);
}

}  // namespace goro::detail
