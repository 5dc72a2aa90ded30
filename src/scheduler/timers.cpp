// scheduler/timers.cpp — the timer heap: one binary min-heap on `when` for
// the whole runtime, guarded by timer_mu. Workers run due timers from their
// loop; the idle worker that is the timer watcher sleeps until the earliest
// deadline (scheduler.hpp, B4/B5), so N sleeping goroutines cost N heap
// entries and no OS timer at all.
//
// Invariants (under timer_mu): a node is in the heap iff heap_index != npos,
// and timers[i]->heap_index == i. next_deadline mirrors the top (max when
// empty). A node being fired has firing == true and is not in the heap
// unless its fire re-started it. fire runs with no lock held.
#include <limits>
#include <thread>

#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);
constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();
thread_local timer_node* firing_now = nullptr;

std::int64_t to_ns(clock::time_point tp) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

// A 4-ary min-heap of (when, node): the keys sit in the array, so sifting
// compares contiguous memory instead of chasing nodes that may live on
// goroutine stacks a megabyte apart; only the moved node's heap_index is
// written. Four children per level halve the depth of a binary heap.
struct heap_ops {
    std::vector<timer_entry>& h;
    void set(std::size_t i, timer_entry e) {
        h[i] = e;
        e.node->heap_index = i;
    }
    void up(std::size_t i) {
        timer_entry e = h[i];
        while (i > 0) {
            std::size_t p = (i - 1) / 4;
            if (!(e.when < h[p].when)) break;
            set(i, h[p]);
            i = p;
        }
        set(i, e);
    }
    void down(std::size_t i) {
        timer_entry e = h[i];
        const std::size_t n = h.size();
        for (;;) {
            std::size_t c = 4 * i + 1;
            if (c >= n) break;
            std::size_t best = c;
            for (std::size_t k = c + 1; k < c + 4 && k < n; ++k)
                if (h[k].when < h[best].when) best = k;
            if (!(h[best].when < e.when)) break;
            set(i, h[best]);
            i = best;
        }
        set(i, e);
    }
    void push(timer_node* t) {
        h.push_back({to_ns(t->when), t});
        up(h.size() - 1);
    }
    void remove(timer_node* t) {
        std::size_t i = t->heap_index;
        timer_entry last = h.back();
        h.pop_back();
        t->heap_index = npos;
        if (last.node == t) return;
        set(i, last);
        down(i);
        up(last.node->heap_index);
    }
};

}  // namespace

void scheduler::timer_add(timer_node* t) {
    bool earliest;
    std::int64_t when = to_ns(t->when);
    {
        std::lock_guard lk(timer_mu);
        heap_ops ops{timers};
        if (t->heap_index != npos) ops.remove(t);
        t->cancelled = false;
        ops.push(t);
        earliest = timers.front().node == t;
        next_deadline.store(timers.front().when, std::memory_order_seq_cst);
    }
    if (earliest) poke_for_timer(when);
}

bool scheduler::timer_remove(timer_node* t) noexcept {
    bool was_pending = false;
    {
        std::lock_guard lk(timer_mu);
        if (t->heap_index != npos) {
            heap_ops{timers}.remove(t);
            was_pending = true;
            next_deadline.store(timers.empty() ? no_deadline : timers.front().when,
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
        std::lock_guard lk(timer_mu);
        heap_ops ops{timers};
        while (n < batch_max && !timers.empty() && timers.front().when <= now) {
            timer_node* t = timers.front().node;
            ops.remove(t);
            t->firing.store(true, std::memory_order_relaxed);
            batch[n++] = t;
        }
        next_deadline.store(timers.empty() ? no_deadline : timers.front().when,
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
            std::lock_guard lk(timer_mu);
            rearm_any = t->heap_index != npos;  // fire restarted it
            if (!t->cancelled && t->heap_index == npos) {
                // Next multiple of the period after now: a slow reader loses
                // ticks instead of getting a burst.
                auto late = clock::time_point(std::chrono::nanoseconds(now)) - t->when;
                auto periods = late / t->period + 1;
                t->when += periods * t->period;
                heap_ops{timers}.push(t);
                next_deadline.store(timers.front().when, std::memory_order_seq_cst);
                rearm = timers.front().node == t;
                rearm_when = to_ns(t->when);
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
}

void scheduler::clear_timers() noexcept {
    std::vector<timer_node*> dropped;
    {
        std::lock_guard lk(timer_mu);
        for (timer_entry& e : timers) {
            e.node->heap_index = npos;
            dropped.push_back(e.node);
        }
        timers.clear();
        next_deadline.store(no_deadline, std::memory_order_seq_cst);
    }
    for (timer_node* t : dropped)
        if (t->release) t->release(t);
}

void timer_start(timer_node* t, clock::time_point when) {
    t->when = when;
    ensure_runtime()->timer_add(t);
}

void timer_settle(timer_node* t) noexcept {
    if (firing_now == t) return;
    while (t->firing.load(std::memory_order_acquire)) std::this_thread::yield();
}

bool timer_stop(timer_node* t) noexcept {
    scheduler* s = current_scheduler();
    if (!s) return false;
    return s->timer_remove(t);
}

}  // namespace goro::detail
