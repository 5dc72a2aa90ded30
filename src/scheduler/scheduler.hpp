// scheduler/scheduler.hpp — the M:N scheduler: workers (one OS thread per P),
// their run queues, the global queue, idle workers, and the timer heap.
//
// Scheduling policy (in the order a worker looks for work; find_runnable in
// worker.cpp makes one call per step):
//   1. every 61st pick, the global queue first, so it cannot starve;
//   2. due timers (every 4th pick), whose goroutines join the local queue;
//   3. runnext: the goroutine the running one just readied runs next on
//      this worker (ping-pong pairs stay on one core). A runnext chain may
//      pass the turn on at most 3 times in a row, then the readied
//      goroutine goes to the tail of the local queue;
//   3b. the spawn stack: goroutines spawned here that have not run yet,
//      the newest first (a tree of spawns runs depth first: spawn_stack.hpp).
//      After 8 such picks in a row while the local queue is not empty, the
//      local queue's turn (or the pinned queue's); and the monitor hands a
//      spawn stack's oldest entry to the global queue when that end has not
//      moved for 10 ms (one per 10 ms), so goroutines spawned under a
//      stream of newer spawns still start. Not in a bubble: there
//      spawns take the runnext path (a bubble's schedule may not depend on
//      the monitor's real-time looks);
//   4. the local queue — with the worker's pinned queue (goroutines locked
//      to it by goro::lock_os_thread) looked at before it (4a) unless the
//      last 4a pick was pinned, and after it (4b), so neither starves the
//      other;
//   5. the global queue (a batch moves to the local one);
//   6. stealing half of another worker's queue, or else the oldest of its
//      spawn stack (and, in the last round, its runnext if a goroutine has
//      sat there over 3 us); 7. park the thread.
//
// Steps 3, 3b and 4 (runnext, the spawn stack and the local queue, not the
// pinned queue) are also taken by a goroutine that parks, yields or exits,
// when none of the periodic steps (1, 2, the network poll) is due at that
// pick and no pinned goroutine waits: it switches straight to what it
// picked, which finishes its switch (scheduler::switch_out, worker.cpp).
//
// A ready() wakes an idle worker (if none spins) for a spawn, or when two
// or more goroutines wait in the local queue besides runnext; a lone
// readied goroutine waits in runnext for its readier to block, which it
// usually does within a microsecond (ping-pong, producer/consumer). If the
// readier keeps its worker instead, the monitor (monitor.hpp) notices within
// about 10 ms and wakes an idle worker to take it: a readied goroutine runs
// within a bounded time whenever a worker is idle, whatever its readier
// does.
//
// Idle protocol, spinning and the timer watcher: scheduler/idle.hpp.
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
//      Wait for the goro::blocking calls in flight (offload/blocking_pool.hpp),
//      whose callers are parked pinned (never claimed by shutdown) or were
//      unwound; repeat while goroutines are left.
//      A goroutine that has run without blocking for about 1 s by then (a
//      busy loop, a long computation) cannot be unwound: it is reported and
//      abandoned, and its worker is lost (worker::lost).
//   4. Workers are told to stop, woken, and joined (a lost one detached, and
//      then the scheduler is leaked, never deleted); their stack caches go
//      back to the shared pool; the timer heap is emptied.
//
// Lock order (goro/detail/lock_rank.hpp): lifecycle -> idle list; the timer
// heap's and the stack pool's locks are leaves. No goroutine is readied
// under the timer heap's lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "diagnostics/counters.hpp"
#include "fibers/goroutine.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "goro/detail/timer_node.hpp"
#include "goro/runtime.hpp"
#include "parking/ranked_mutex.hpp"
#include "scheduler/global_queue.hpp"
#include "scheduler/idle.hpp"
#include "scheduler/monitor.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/spawn_stack.hpp"
#include "scheduler/timer_heap.hpp"
#include "stacks/stack_pool.hpp"

namespace goro::detail {

struct scheduler;

struct worker {
    unsigned index = 0;
    scheduler* owner = nullptr;  // the scheduler it belongs to
    // Set while this worker must leave the ordinary search (find_runnable's
    // first step): it is retired (index >= active, goro::set_procs) or the
    // scheduler stops. Written under procs_mu; one load per look for work,
    // as the stopping flag it stands in for was.
    std::atomic<bool> halt{false};
    run_queue rq;
    std::atomic<goroutine*> runnext{nullptr};
    // Goroutines spawned here that have not run yet, newest first (step 3b;
    // spawn_stack.hpp says why).
    spawn_stack spawns;
    fiber_context sched;  // the worker thread's own stack
    // The goroutine it runs (written by the owner; relaxed: the monitor reads it).
    std::atomic<goroutine*> current{nullptr};
    // During a direct switch (scheduler::switch_out), from the moment
    // `current` names the next goroutine until that one runs: the goroutine
    // leaving, whose stack is still the one running. Null otherwise. Read
    // only by the SIGSEGV handler on this worker's own thread (a stack
    // overflow in the switch's deepest frames is the leaving one's:
    // diagnostics/panic.cpp).
    std::atomic<goroutine*> leaving{nullptr};
    stack_cache stacks;
    std::uint32_t tick = 0;
    std::uint32_t runnext_streak = 0;
    std::uint32_t spawn_streak = 0;  // step-3b picks in a row with the local queue waiting
    // Goroutines the monitor took from this spawn stack that have not exited.
    std::atomic<std::int32_t> rescued_alive{0};
    std::uint32_t releases = 0;  // goroutines that exited here (trim probing)
    bool spinning = false;       // counted in the idle unit's spinning count
    bool took_pinned = false;    // the last step-4a pick was a pinned goroutine
    bool spilled = false;        // the local queue overflowed (spawn_yield_point)
    std::uint64_t rng = 0;
    // Goroutine ids are handed out in blocks to avoid a shared counter.
    std::uint64_t next_id = 0, id_limit = 0;
    // Counted by the owner, summed by num_goroutines().
    alignas(64) std::atomic<std::int64_t> spawned{0};
    std::atomic<std::int64_t> exited{0};
    wake_slot wake;  // how it sleeps when idle, and is woken (idle.hpp)
    // Goroutine runs started here (the owner's count, published for the
    // monitor, which finds a worker stuck in one goroutine by `runs`
    // standing still while `current` is set).
    std::uint64_t runs_local = 0;
    alignas(64) std::atomic<std::uint64_t> runs{0};
    std::atomic<std::int64_t> stuck_since{0};  // ns; 0: not stuck (set by the monitor)
    // Runnable goroutines locked to this worker (goro::lock_os_thread): only
    // this worker takes them (steps 4a/4b); nobody steals from here.
    global_queue pinned;
    // goro::set_procs (scheduler/procs.cpp): the worker sleeps retired
    // (index >= active) on retire_word, which wakers bump.
    std::atomic<bool> retired{false};
    std::atomic<std::uint32_t> retire_word{0};
    bool in_idle = false;  // guarded by the idle list's lock
    // Its thread's tls_worker (parking/tls.cpp), and whether a shutdown gave
    // up on it: its goroutine ran on without blocking past the grace
    // (runtime/lifecycle.cpp, abandon_spinners). A lost worker's thread is
    // detached and left running that goroutine as a plain thread; it never
    // runs goroutines again, and its scheduler is leaked, never freed.
    std::atomic<worker*>* tls = nullptr;
    std::atomic<bool> lost{false};
    // goro::stats(): written by this worker only (diagnostics/counters.hpp).
    alignas(64) worker_counters counters;
    std::thread thread;
};

struct scheduler {
    // Worker slots: max(procs, hardware threads), fixed for the scheduler's
    // life (`workers` never changes size). Workers [0, active) take work;
    // [active, launched) are retired: they run only goroutines locked to
    // them, else sleep; [launched, nprocs) have no thread yet
    // (goro::set_procs, scheduler/procs.cpp).
    unsigned nprocs = 0;
    std::vector<worker*> workers;
    // Read at every look for work: a line of their own, written only by
    // set_active (launched only grows).
    alignas(64) std::atomic<unsigned> active{0};
    std::atomic<unsigned> launched{0};
    // Slots asleep retired, or not launched: the monitor's "every worker
    // idle" (deadlock check, deep sleep) counts them with the idle ones.
    alignas(64) std::atomic<std::int32_t> parked_workers{0};
    ranked_mutex procs_mu{lock_rank::procs};  // serializes set_active, and stop's flag
    global_queue global;
    std::atomic<bool> stopping{false};
    // Set by shutdown once no goroutine is left: plain threads no longer
    // enter (runtime_use), timers no longer fire.
    std::atomic<bool> closing{false};
    // Set by shutdown when plain threads still start goroutines after it
    // has gone on for plain_feed_grace_ns (lifecycle.cpp): from then on a
    // plain thread other than the blocking pool's starts nothing more (a
    // runtime_use that may start a runtime waits as once `closing` is set;
    // a ready() still goes through). Else a thread calling go()
    // in a tight loop kept live() above zero and run() from returning.
    std::atomic<bool> closed_to_plain_threads{false};
    std::int64_t shutdown_began_ns = 0;             // the shutting-down thread's
    std::int64_t external_at_shutdown = 0;          // external_spawned then
    std::atomic<std::int64_t> external_spawned{0};  // spawns from plain threads
    // Goroutines given up at shutdown (parked in a destructor with nothing
    // left to wake them): never resumed, not counted as live.
    std::atomic<std::int64_t> abandoned{0};
    // Set by shutdown after 0.5 s in which no goroutine ended: a goroutine
    // that swallowed the unwind and blocks again is abandoned instead of
    // unwound again (throw_unwind, park.cpp), so run() can return.
    std::atomic<bool> abandon_swallowers{false};
    // Bumped (and futex-woken) by every goroutine exit during shutdown; the
    // shutdown thread sleeps on it until no goroutine is left.
    alignas(64) std::atomic<std::uint32_t> exit_seq{0};
    std::atomic<std::uint64_t> next_id_block{1};

    // Timers: a 4-ary min-heap on `when` (timer_heap.hpp).
    spin_mutex timer_mu{lock_rank::timers};
    timer_heap timers GORO_GUARDED_BY(timer_mu);
    bool timers_closed GORO_GUARDED_BY(timer_mu) = false;
    std::atomic<std::int32_t> fires_running{0};
    alignas(64) std::atomic<std::int64_t> next_deadline;  // ns since epoch, max = none

    idle_workers idle;  // after next_deadline, which it reads
    monitor mon;        // after workers

    // Deadlock detection (diagnostics/deadlock.cpp). Set before start().
    bool virtual_time = false;     // a bubble: one worker, the virtual clock
    bool detect_deadlock = false;  // options::detect_deadlock (the monitor checks)
    // The thread parked in run() until its main goroutine finishes; a
    // detected deadlock readies it instead (claiming its park first, so
    // that exactly one of the two does), and run() shuts down as if main had
    // returned. Valid while run() runs.
    std::atomic<parker*> run_caller{nullptr};
    std::atomic<bool> deadlocked{false};
    std::string deadlock_report;  // written before `deadlocked`, read after run's shutdown
    // run()'s main returned or threw (not goro::exit, which waits for the
    // others): the run is ending, and a bubble's clock stands still from
    // here (advance_virtual_clock): what is left is unwound, not woken.
    std::atomic<bool> main_returned{false};
    // A bubble's worker only (advance_virtual_clock): the last check that
    // found the bubble deadlocked (goroutine runs and plain-thread entries
    // then); declared at the next one, 2 ms on, if nothing moved between.
    bool bubble_looked_deadlocked = false;
    std::uint64_t bubble_deadlock_runs = 0;
    std::uint64_t bubble_deadlock_users = 0;

    // procs workers take work; slots >= procs worker slots exist.
    scheduler(unsigned procs, unsigned slots);
    ~scheduler();

    void start();
    // goro::set_procs: workers [0, n) take work from now on (1 <= n <=
    // nprocs); returns the previous count. Launches slots never launched
    // (std::system_error if a thread cannot start: the count is then
    // unchanged). Does nothing once the scheduler stops.
    unsigned set_active(unsigned n);
    // find_runnable's first step on a retired worker (index >= active):
    // hands its queued goroutines on, runs goroutines locked to it, else
    // sleeps until active again, stopping, or one of those arrives. Null:
    // look again.
    goroutine* retired_pick(worker* w) noexcept;
    // Wakes w if it sleeps retired (it looks again).
    void wake_retired(worker* w) noexcept;
    void launch(worker* w);
    void stop();  // joins workers; requires no live goroutine

    // Makes g runnable. From a goroutine on a worker: a spawned g to the
    // worker's spawn stack (if full, as a readied one), a readied g to
    // runnext (the one it displaces goes to the local queue); from the
    // worker's own loop (due timers): the local queue; from a plain thread:
    // the global queue.
    void ready(goroutine* g, bool spawned) noexcept;
    // ready() of a goroutine locked to a worker: its pinned queue, and a
    // poke if that worker sleeps.
    void ready_pinned(goroutine* g) noexcept;
    void push_local(worker* w, goroutine* g) noexcept;  // spills half when full
    void push_global(goroutine* g) noexcept;
    void wakep() noexcept { idle.wake_one(); }
    void poke_for_timer(std::int64_t when_ns) noexcept { idle.timer_added(when_ns); }

    std::int64_t live() const noexcept;

    // Timer heap (scheduler/timers.cpp).
    void timer_add(timer_node* t);
    bool timer_remove(timer_node* t) noexcept;
    void run_due_timers(std::int64_t now_ns) noexcept;
    void clear_timers() noexcept;
    // Shutdown: due timers no longer fire; returns once no fire is running.
    void close_timers() noexcept;
    // Shutdown: moves the pending timers out (for the next runtime).
    void take_timers(std::vector<timer_node*>& out);

    // Worker loop (scheduler/worker.cpp).
    void worker_main(worker* w);
    goroutine* find_runnable(worker* w);
    goroutine* take_global_periodically(worker* w);
    void run_due_timers_sometimes(worker* w) noexcept;
    goroutine* take_runnext(worker* w) noexcept;
    goroutine* take_spawned(worker* w) noexcept;
    goroutine* take_pinned(worker* w) noexcept;
    goroutine* take_pinned_first(worker* w) noexcept;
    goroutine* take_global(worker* w) noexcept;
    goroutine* steal_work(worker* w) noexcept;
    goroutine* unless_retired(worker* w, goroutine* g) noexcept;
    bool park_worker(worker* w) noexcept;  // true if it slept
    void idle_look_in_a_bubble(worker* w) noexcept;
    goroutine* steal(worker* w, bool take_runnext) noexcept;
    goroutine* steal_runnext(worker* v) noexcept;
    goroutine* steal_spawns(worker* w, worker* v, bool take_lone) noexcept;
    bool any_work(const worker* self) const noexcept;
    void execute(worker* w, goroutine* g);
    // A goroutine g leaving worker w (park, yield, exit; g->action says
    // which): switches straight to the goroutine the loop would run next,
    // when it is at hand without any of the loop's periodic duties
    // (pick_next_directly), else to the worker's loop. Returns what the
    // switch that resumes g passes: for switched_in.
    void* switch_out(worker* w, goroutine* g, bool exiting) noexcept;
    goroutine* pick_next_directly(worker* w, bool& loop) noexcept;
    void finish_switch(worker* w, goroutine* g) noexcept;
    void finish_park(goroutine* g) noexcept;
    // Shutdown: claims g's finished park (word value `parked`) and readies g
    // to unwind. False if a waker claimed it first.
    bool claim_for_unwind(goroutine* g, std::uint64_t parked) noexcept;

    // Deadlock detection and the bubble's clock (diagnostics/deadlock.cpp).
    // True if nothing but a goroutine can end any wait now: no descriptor
    // waited on, no plain thread inside (or parked in) a goro call, no
    // blocking call in flight.
    bool only_goroutines_can_wake() const noexcept;
    // Reports "all goroutines are asleep" with a dump and wakes run()'s
    // caller (run() then shuts down and throws goro::deadlock_error).
    void declare_deadlock() noexcept;
    // The bubble's step 7: with nothing runnable, advance the virtual clock
    // to the next timer, or declare a deadlock. True if the worker should
    // look for work again instead of sleeping.
    bool advance_virtual_clock(worker* w) noexcept;
    static bool a_wake_is_in_flight() noexcept;
    // A goroutine that shutdown is about to unwind: parked claimable (the
    // shutdown's scan claims it), or claimed and not yet readied.
    static bool an_unwind_is_pending() noexcept;
};

// How goro::testing::bubble runs (runtime/lifecycle.cpp): a runtime of its
// own with one worker, the virtual clock, exact deadlock detection, and
// select's random choices drawn from `seed`.
struct run_mode {
    std::uint64_t seed = 1;
};
int run_main_in(const goro::options& opts, void (*entry)(void*), void* fn, const run_mode* mode);
// select's random state inside a bubble (channels/select.cpp).
extern std::atomic<std::uint64_t> bubble_random_state;

// The running runtime, or null.
scheduler* current_scheduler() noexcept;
// True while a goro::run is active.
bool run_is_active() noexcept;
// Starts the process-wide runtime if none runs; returns it.
scheduler* ensure_runtime();

// A plain thread's use of the runtime (a spawn, a timer start or stop): the
// scheduler stays alive until the guard goes, even if run() ends meanwhile
// (shutdown waits for such users before it deletes the scheduler, and a
// plain thread that arrives while shutdown closes it waits for shutdown to
// finish and uses the next runtime). On a worker thread it is just the
// current scheduler: goroutines keep their runtime alive. `start`: start a
// runtime if none runs, else get null.
class runtime_use {
  public:
    explicit runtime_use(bool start);
    ~runtime_use();
    runtime_use(const runtime_use&) = delete;
    runtime_use& operator=(const runtime_use&) = delete;
    scheduler* get() const noexcept { return s_; }

  private:
    scheduler* s_ = nullptr;
    bool counted_ = false;
};

// The worker the calling thread is, or null; the goroutine it runs, or null.
// Never cache these across a park: a goroutine migrates between workers.
worker* this_worker() noexcept;
void set_this_worker(worker* w) noexcept;
goroutine* this_goroutine_record() noexcept;
// From another thread: w's thread is no worker any more (this_worker() and
// this_goroutine_record() are null on it from now on). Shutdown only.
void forget_worker_thread(worker* w) noexcept;
// The calling thread sleeps for ever: a lost worker's (scheduler.hpp, worker).
[[noreturn]] void freeze_lost_thread() noexcept;

// The runtime's clock (time/now.cpp): clock::now() in ns, or inside a
// goro::testing::bubble its virtual time. real_now_ns() is always the
// steady clock (spin bounds, the monitor's checks).
std::int64_t now_ns() noexcept;
std::int64_t real_now_ns() noexcept;
// The virtual clock of a bubble: on while one runs; advanced only by its
// worker when every goroutine of the bubble is durably blocked.
extern std::atomic<bool> virtual_clock_on;
extern std::atomic<std::int64_t> virtual_clock_ns;
// Plain threads parked in a goro call (parking/park.cpp); deadlock
// detection does not fire while any is (it might wake a goroutine).
extern std::atomic<std::int64_t> plain_parked;
// Plain threads inside a runtime_use (runtime/lifecycle.cpp): the low 32
// bits count those inside, the high 32 bits count entries (wrapping), so
// that one load tells whether any entered since an earlier one (a bubble's
// deadlock check: diagnostics/deadlock.cpp).
extern std::atomic<std::uint64_t> plain_users;
constexpr std::uint64_t plain_user_entry = (std::uint64_t{1} << 32) + 1;
constexpr std::uint64_t plain_users_inside(std::uint64_t v) noexcept {
    return v & 0xffff'ffffu;
}
// SIGQUIT asked for a dump (diagnostics/dump.cpp); the monitor writes it.
extern std::atomic<bool> dump_requested;
void dump_goroutines_to_stderr() noexcept;
void install_sigquit_dump();

// now_ns() to within a few milliseconds, for diagnostics on hot paths: the
// monitor refreshes it (a load, where a clock read costs ~20 ns).
extern std::atomic<std::int64_t> coarse_clock_ns;
inline std::int64_t coarse_now_ns() noexcept {
    return coarse_clock_ns.load(std::memory_order_relaxed);
}

// First thing a goroutine does when switched in (at every return from
// scheduler::switch_out, and at its start): `prev`, when not null, is the
// goroutine that switched straight to it, whose park, yield or exit this
// one finishes on its own stack, as the worker's loop would have.
void finish_direct_switch(goroutine* prev) noexcept;
[[gnu::always_inline]] inline void switched_in(void* prev) noexcept {
    if (prev) finish_direct_switch(static_cast<goroutine*>(prev));
}

// Goroutine lifecycle (runtime/goroutine.cpp).
void goroutine_main(void* g);
void release_goroutine(worker* w, goroutine* g) noexcept;
[[noreturn]] void panic_escaped(goroutine* g, const char* what) noexcept;
void check_stack_canary(goroutine* g) noexcept;

// The running goroutine g, its g->action set (park, yield), leaves its
// worker: the stack's low-water mark is taken at `sp` (the caller's frame)
// and its canary checked, then g switches out; it returns when g is resumed,
// maybe on another worker, after finishing the switch that resumed it.
// A shutdown may give up on g as a spinner (lifecycle.cpp) between the
// caller's this_goroutine_record() and the switch: then its thread is no
// worker any more, and switch_on_forgotten_thread handles it.
void switch_on_forgotten_thread(goroutine* g) noexcept;
[[gnu::always_inline]] inline void switch_away(goroutine* g, std::uintptr_t sp) noexcept {
    if (g->low_water == 0 || sp < g->low_water) g->low_water = sp;
    check_stack_canary(g);
    worker* w = this_worker();
    if (!w) [[unlikely]]
        return switch_on_forgotten_thread(g);
    switched_in(w->owner->switch_out(w, g, false));
}

}  // namespace goro::detail
