// goro/stats.hpp — the scheduler's counters, read at run time.
//
//   goro::runtime_stats s = goro::stats();
//   for (const goro::worker_stats& w : s.workers)
//       std::printf("worker %u: %llu runs, %llu stolen\n", w.index,
//                   (unsigned long long)w.goroutines_run, (unsigned long long)w.picks_stolen);
//
// Each worker counts for itself (a plain per-worker field, no shared counter
// on the hot path); stats() reads every worker's counters without stopping
// anyone, so the figures of a busy runtime are each exact but not all of
// the same instant. Counters start at zero with each runtime (each run(),
// or the lazily started one) and vanish with it.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstddef>
#include <cstdint>
#include <vector>

namespace goro {

// One worker's counters, since its runtime started.
struct worker_stats {
    unsigned index = 0;  // the worker's number (its track in a trace)
    // Where the goroutines it ran came from (scheduler.hpp's search order):
    // runnext (the one the previous goroutine readied), its local queue (and
    // its pinned queue, of goroutines locked to its thread), the global
    // queue, or stolen from another worker. picks_spawned: from its
    // spawn stack (goroutines spawned there, newest first), counted apart
    // from picks_local.
    std::uint64_t picks_runnext = 0, picks_local = 0, picks_global = 0, picks_stolen = 0;
    std::uint64_t picks_spawned = 0;
    std::uint64_t steal_attempts = 0;   // another worker's queue looked at
    std::uint64_t steal_successes = 0;  // ... and a goroutine taken from it
    std::uint64_t futex_sleeps = 0;     // sleeps in the kernel (futex_wait)
    std::uint64_t poll_sleeps = 0;      // sleeps in epoll_wait (the timer watcher with I/O)
    // Why it woke after sleeping: to spin for new work, to recheck (an
    // earlier timer, shutdown), or its timeout ran out (timers due).
    std::uint64_t wakes_spin = 0, wakes_recheck = 0, wakes_timeout = 0;
    std::uint64_t goroutines_run = 0;  // runs started (a goroutine run between two switches)

    // Goroutines picked to run, from everywhere.
    std::uint64_t picks() const noexcept {
        return picks_runnext + picks_spawned + picks_local + picks_global + picks_stolen;
    }
};

// A runtime's counters (goro::stats()).
struct runtime_stats {
    bool running = false;  // false: no runtime, every figure 0
    // By index: every worker started so far, retired ones (index >= procs,
    // goro::set_procs) included.
    std::vector<worker_stats> workers;
    worker_stats total;                // the sum (index 0)
    std::int64_t goroutines_live = 0;  // spawned and not yet exited
    std::size_t timers_pending = 0;    // in the timer heap
    unsigned procs = 0;                // workers taking goroutines now (goro::get_procs())
};

// The counters of the running runtime (an empty runtime_stats if none
// runs). Callable from any thread or goroutine; takes the timer heap's lock
// briefly, nothing else.
runtime_stats stats();

}  // namespace goro
