// diagnostics/counters.hpp — a worker's scheduling counters (goro::stats()).
//
// Invariants: every field is written only by the worker that owns it (its
// OS thread), as a relaxed load, add and store: no read-modify-write, no
// shared cache line between workers, no fence; the owner's count is exact.
// Readers (stats(), any thread) load each field relaxed: race-free, but a
// set of fields read while the worker runs is not one consistent instant
// (picks may be one ahead of runs, say). No lock.
#pragma once

#include <cstdint>

#include "goro/detail/relaxed.hpp"

namespace goro::detail {

// One owner-written counter.
class counter {
  public:
    void bump() noexcept { ++v_; }
    std::uint64_t get() const noexcept { return v_; }

  private:
    relaxed<std::uint64_t> v_;
};

// Where find_runnable found the goroutine it runs.
struct worker_counters {
    counter picks_runnext, picks_spawned, picks_local, picks_global, picks_stolen;
    counter steal_attempts;  // one per victim looked at
    counter steal_successes;
    counter wakes_spin, wakes_recheck, wakes_timeout;  // after a sleep, by reason
};

}  // namespace goro::detail
