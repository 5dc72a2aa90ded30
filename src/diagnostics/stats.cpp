// diagnostics/stats.cpp — goro::stats(): every worker's counters
// (diagnostics/counters.hpp) read without stopping anyone, plus the live
// goroutine count and the timer heap's size.
//
// Invariants: the runtime_use keeps the scheduler alive while its workers'
// counters are read. Lock order: only the timer heap's lock (a leaf), held
// for one size().
#include "goro/stats.hpp"

#include "scheduler/scheduler.hpp"

namespace goro {

namespace {

worker_stats read_worker(const detail::worker& w) {
    const detail::worker_counters& c = w.counters;
    worker_stats s;
    s.index = w.index;
    s.picks_runnext = c.picks_runnext.get();
    s.picks_local = c.picks_local.get();
    s.picks_spawned = c.picks_spawned.get();
    s.picks_global = c.picks_global.get();
    s.picks_stolen = c.picks_stolen.get();
    s.steal_attempts = c.steal_attempts.get();
    s.steal_successes = c.steal_successes.get();
    s.futex_sleeps = w.wake.futex_sleeps();
    s.poll_sleeps = w.wake.poll_sleeps();
    s.wakes_spin = c.wakes_spin.get();
    s.wakes_recheck = c.wakes_recheck.get();
    s.wakes_timeout = c.wakes_timeout.get();
    s.goroutines_run = w.runs.load(std::memory_order_relaxed);
    return s;
}

void add(worker_stats& sum, const worker_stats& s) {
    sum.picks_runnext += s.picks_runnext;
    sum.picks_local += s.picks_local;
    sum.picks_spawned += s.picks_spawned;
    sum.picks_global += s.picks_global;
    sum.picks_stolen += s.picks_stolen;
    sum.steal_attempts += s.steal_attempts;
    sum.steal_successes += s.steal_successes;
    sum.futex_sleeps += s.futex_sleeps;
    sum.poll_sleeps += s.poll_sleeps;
    sum.wakes_spin += s.wakes_spin;
    sum.wakes_recheck += s.wakes_recheck;
    sum.wakes_timeout += s.wakes_timeout;
    sum.goroutines_run += s.goroutines_run;
}

}  // namespace

runtime_stats stats() {
    detail::runtime_use use(false);
    detail::scheduler* s = use.get();
    runtime_stats r;
    if (!s) return r;
    r.running = true;
    r.procs = s->active.load(std::memory_order_relaxed);
    // Slots above `launched` have no thread yet (goro::set_procs).
    const unsigned launched = s->launched.load(std::memory_order_acquire);
    r.workers.reserve(launched);
    for (unsigned i = 0; i < launched; ++i) {
        r.workers.push_back(read_worker(*s->workers[i]));
        add(r.total, r.workers.back());
    }
    r.goroutines_live = s->live();
    {
        detail::lock_scope lk(s->timer_mu);
        r.timers_pending = s->timers.size();
    }
    return r;
}

}  // namespace goro
