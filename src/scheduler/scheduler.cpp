// scheduler/scheduler.cpp — creating, starting and stopping the workers.
// See scheduler.hpp for the policy, the idle protocol and shutdown steps.
#include "scheduler/scheduler.hpp"

#include <limits>

namespace goro::detail {

scheduler::scheduler(unsigned procs, unsigned slots)
    : nprocs(slots), next_deadline(no_deadline), idle(slots, active, next_deadline), mon(*this) {
    active.store(procs, std::memory_order_relaxed);
    // Every slot is without a thread until launch() (procs.cpp) starts it.
    parked_workers.store(static_cast<std::int32_t>(slots), std::memory_order_relaxed);
    workers.reserve(slots);
    for (unsigned i = 0; i < slots; ++i) {
        auto* w = new worker;
        w->index = i;
        w->owner = this;
        w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
        w->halt.store(i >= procs, std::memory_order_relaxed);  // launched retired, if ever
        workers.push_back(w);
    }
}

scheduler::~scheduler() {
    for (worker* w : workers) delete w;
}

void scheduler::start() {
    const unsigned n = active.load(std::memory_order_relaxed);
    {
        lock_scope lk(procs_mu);
        for (unsigned i = 0; i < n; ++i) launch(workers[i]);
    }
    mon.start();
}

void scheduler::stop() {
    {
        // set_active launches no worker after this (it would never be joined).
        lock_scope lk(procs_mu);
        stopping.store(true, std::memory_order_seq_cst);
        for (worker* w : workers) w->halt.store(true, std::memory_order_release);
    }
    mon.stop();
    idle.wake_all(workers);
    for (worker* w : workers) wake_retired(w);
    for (worker* w : workers) {
        if (!w->thread.joinable()) continue;
        if (w->lost.load(std::memory_order_acquire))
            w->thread.detach();  // it runs an abandoned goroutine on (lifecycle.cpp)
        else
            w->thread.join();
    }
    clear_timers();
}

std::int64_t scheduler::live() const noexcept {
    // Exits are read before spawns: every exit counted has its spawn before
    // it in the seq_cst order, so the total is never below the truth.
    std::int64_t exited = abandoned.load(std::memory_order_seq_cst), spawned = 0;
    for (worker* w : workers) exited += w->exited.load(std::memory_order_seq_cst);
    for (worker* w : workers) spawned += w->spawned.load(std::memory_order_seq_cst);
    spawned += external_spawned.load(std::memory_order_seq_cst);
    return spawned - exited;
}

}  // namespace goro::detail
