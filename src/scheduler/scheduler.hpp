// scheduler/scheduler.hpp — the M:N scheduler: workers (one OS thread per P),
// their run queues, the global queue, idle workers, and the timer heap.
//
// Scheduling policy (in the order a worker looks for work):
//   1. every 61st pick, the global queue first, so it cannot starve;
//   2. runnext: the goroutine the running one just readied or spawned runs
//      next on this worker (ping-pong pairs stay on one core). A runnext
//      chain may pass the turn on at most 3 times in a row, then the readied
//      goroutine goes to the tail of the local queue;
//   3. the local queue; 4. the global queue (a batch moves to the local one);
//   5. due timers; 6. stealing half of another worker's queue (and, in the
//      last round, its runnext if a goroutine has sat there over 3 us); 7. park
//      the thread.
//
// Every ready() wakes an idle worker if none is spinning (Go's wakep), so a
// readied goroutine runs within a bounded time whenever a worker is idle,
// whatever its readier does next.
//
// Idle protocol (no lost wake-ups; Go's wakep/spinning rules):
//   submitter:  A1 make work visible (local/global queue, runnext, timer)
//               A2 seq_cst fence
//               A3 if idle workers exist and none is spinning: CAS spinning
//                  0 -> 1, pop an idle worker, wake it (it starts spinning)
//   worker:     B1 register in the idle list (nidle++)
//               B2 stop spinning (nspinning--)
//               B3 seq_cst fence
//               B4 recheck every queue and the timer deadline; if work:
//                  unregister (or, if a waker popped it already, take the
//                  wake) and look again
//               B5 watch its wake word for ~20 us (a wake then costs no
//                  syscall), then sleep on it in the kernel, with a timeout
//                  if it is the timer watcher
//   Either A3 sees B1 (and wakes someone), or B4 sees A1. While one worker
//   spins, submitters wake nobody: the spinner finds the work, and when it
//   stops spinning with work in hand it wakes another if none spins.
//   At most half the busy workers spin at once.
//
// Shutdown (end of run(), or process exit for a lazily started runtime;
// runtime/lifecycle.cpp has the steps in detail):
//   1. shutting_down := true (seq_cst). From now on park()/yield() in a
//      goroutine unwind instead of blocking, unless an exception is in
//      flight on it (a destructor during unwinding: it waits as usual).
//   2. One scan: every goroutine whose park has finished (park word
//      `parked`) is claimed and, outside the stack pool's lock, readied
//      with unwind_requested; its blocking call removes its waiters and
//      throws goroutine_unwind. A park that finishes after the scan sees
//      the flag in finish_park and does the same itself.
//   3. Sleep on exit_seq until no goroutine is left; resolve parks that can
//      no longer be woken (unwind wait_group waits, abandon destructors).
//   4. Workers are told to stop, woken, and joined; their stack caches go
//      back to the shared pool; the timer heap is emptied.
//
// Lock order: lifecycle mutex -> idle mutex; timer mutex and stack pool
// mutex are leaves. No goroutine is readied under the timer mutex.
#pragma once

#include <concurrentqueue/concurrentqueue.h>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "fibers/goroutine.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "goro/detail/timer_node.hpp"
#include "parking/ranked_mutex.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/timer_heap.hpp"
#include "stacks/stack_pool.hpp"

namespace goro::detail {

struct worker {
    unsigned index = 0;
    run_queue rq;
    std::atomic<goroutine*> runnext{nullptr};
    fiber_context sched;  // the worker thread's own stack
    goroutine* current = nullptr;
    stack_cache stacks;
    std::uint32_t tick = 0;
    std::uint32_t runnext_streak = 0;
    std::uint32_t releases = 0;  // goroutines that exited here (trim probing)
    bool spinning = false;
    std::uint64_t rng = 0;
    // Goroutine ids are handed out in blocks to avoid a shared counter.
    std::uint64_t next_id = 0, id_limit = 0;
    // Counted by the owner, summed by num_goroutines().
    alignas(64) std::atomic<std::int64_t> spawned{0};
    std::atomic<std::int64_t> exited{0};
    // 0: running or watching (B5); 1: woken to spin; 2: poked (timer) or
    // stop; 3: sleeping in the kernel (a waker must futex_wake).
    alignas(64) std::atomic<std::uint32_t> wake_word{0};
    bool in_idle = false;  // guarded by the idle mutex
    std::thread thread;
};

struct scheduler {
    unsigned nprocs = 0;
    std::vector<worker*> workers;
    moodycamel::ConcurrentQueue<goroutine*> global;
    alignas(64) std::atomic<std::int64_t> global_pending{0};
    alignas(64) std::atomic<std::int32_t> nspinning{0};
    std::atomic<std::int32_t> nidle{0};
    ranked_mutex idle_mu{lock_rank::idle};
    std::vector<worker*> idle GORO_GUARDED_BY(idle_mu);
    std::atomic<bool> stopping{false};
    std::atomic<std::int64_t> external_spawned{0};  // spawns from plain threads
    // Goroutines given up at shutdown (parked in a destructor with nothing
    // left to wake them): never resumed, not counted as live.
    std::atomic<std::int64_t> abandoned{0};
    // Bumped (and futex-woken) by every goroutine exit during shutdown; the
    // shutdown thread sleeps on it until no goroutine is left.
    alignas(64) std::atomic<std::uint32_t> exit_seq{0};
    std::atomic<std::uint64_t> next_id_block{1};

    // Timers: a 4-ary min-heap on `when` (timer_heap.hpp).
    spin_mutex timer_mu{lock_rank::timers};
    timer_heap timers GORO_GUARDED_BY(timer_mu);
    alignas(64) std::atomic<std::int64_t> next_deadline;  // ns since epoch, max = none
    std::atomic<worker*> timer_watcher{nullptr};
    std::atomic<std::int64_t> watcher_until{0};

    explicit scheduler(unsigned procs);
    ~scheduler();

    void start();
    void stop();  // joins workers; requires no live goroutine

    // Makes g runnable. From a goroutine on a worker: runnext (the one it
    // displaces goes to the local queue); from the worker's own loop (due
    // timers): the local queue; from a plain thread: the global queue.
    void ready(goroutine* g, bool spawned) noexcept;
    void push_local(worker* w, goroutine* g) noexcept;  // spills half when full
    void push_global(goroutine* g) noexcept;
    void wakep() noexcept;
    void poke_for_timer(std::int64_t when_ns) noexcept;

    std::int64_t live() const noexcept;

    // Timer heap (scheduler/timers.cpp).
    void timer_add(timer_node* t);
    bool timer_remove(timer_node* t) noexcept;
    void run_due_timers(std::int64_t now_ns) noexcept;
    void clear_timers() noexcept;

    // Worker loop (scheduler/worker.cpp).
    void worker_main(worker* w);
    goroutine* find_runnable(worker* w);
    goroutine* steal(worker* w, bool take_runnext) noexcept;
    goroutine* steal_runnext(worker* v) noexcept;
    bool any_work(const worker* self) const noexcept;
    void sleep_idle(worker* w);
    void execute(worker* w, goroutine* g);
    void finish_switch(worker* w, goroutine* g);
    void finish_park(goroutine* g) noexcept;
    // Shutdown: claims g's finished park (word value `parked`) and readies g
    // to unwind. False if a waker claimed it first.
    bool claim_for_unwind(goroutine* g, std::uint64_t parked) noexcept;
    bool remove_idle(worker* w) noexcept;
    void wake_worker(worker* w, std::uint32_t how) noexcept;
    // B5: waits for a wake until deadline (ns; no deadline: max); returns
    // it (1 or 2) and clears the word, or 0 on timeout.
    std::uint32_t await_wake(worker* w, std::int64_t deadline) noexcept;
};

// The running runtime, or null.
scheduler* current_scheduler() noexcept;
// Starts the process-wide runtime if none runs; returns it.
scheduler* ensure_runtime();

// The worker the calling thread is, or null; the goroutine it runs, or null.
// Never cache these across a park: a goroutine migrates between workers.
worker* this_worker() noexcept;
void set_this_worker(worker* w) noexcept;
goroutine* this_goroutine_record() noexcept;

std::int64_t now_ns() noexcept;

// Goroutine lifecycle (runtime/goroutine.cpp).
void goroutine_main(void* g);
void release_goroutine(worker* w, goroutine* g) noexcept;
[[noreturn]] void panic_escaped(goroutine* g, const char* what) noexcept;
void check_stack_canary(goroutine* g) noexcept;

}  // namespace goro::detail
