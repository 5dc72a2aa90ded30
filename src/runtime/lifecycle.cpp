// runtime/lifecycle.cpp — starting and stopping the process-wide runtime,
// and goro::run.
//
// There is at most one scheduler at a time. It is started by run(), or
// lazily by the first go()/timer from outside run(); a lazily started one
// lives until the next run() ends or the process exits. The shutdown steps
// are listed in scheduler/scheduler.hpp.
//
// Lock order: lifecycle_mu -> (scheduler locks). g_sched is written only
// under lifecycle_mu and read lock-free.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "goro/errors.hpp"
#include "goro/runtime.hpp"
#include "net/poller.hpp"
#include "offload/blocking_pool.hpp"
#include "runtime/exit.hpp"
#include "runtime/parse_count.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"
#include "stacks/stack_config.hpp"
#include "stacks/stack_pool.hpp"

namespace goro::detail {

// Plain threads inside runtime_use (see scheduler.hpp).
std::atomic<std::uint64_t> plain_users{0};

extern std::atomic<bool> g_shutting_down;
void install_overflow_handler();
void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;

namespace {

ranked_mutex lifecycle_mu{lock_rank::lifecycle};
std::atomic<scheduler*> g_sched{nullptr};
bool run_active = false;                   // guarded by lifecycle_mu
std::atomic<bool> run_active_flag{false};  // run_active, for lock-free readers
bool atexit_hooked = false;                // guarded by lifecycle_mu
// Timers of the process (timer_node::outlives_run) still pending when a
// runtime ended: the next runtime runs them, and a run() that leaves some
// starts a runtime lazily for them, so they fire on time. Timers started
// during a run() end with it (as a Go program's end with main): they are
// released, never fired — unless their outlives_run_if says otherwise (the
// deadline of a context still held after the run).
std::vector<timer_node*> carried_timers;  // guarded by lifecycle_mu
// Schedulers whose shutdown lost a worker (abandon_spinners): never deleted,
// as the lost thread may still touch them. Held here, where LeakSanitizer
// sees them (and what they point to) as reachable.
std::vector<scheduler*> leaked_schedulers;  // guarded by lifecycle_mu

constexpr unsigned max_procs = 4096;

// GORO_MAXPROCS, parsed: 0 when unset; throws misuse_error when malformed
// (digits only: runtime/parse_count.hpp).
unsigned procs_from_env() {
    const char* env = std::getenv("GORO_MAXPROCS");
    if (!env) return 0;
    std::uint64_t v = 0;
    if (!parse_count(env, v) || v == 0 || v > max_procs)
        throw misuse_error(std::string("goro: GORO_MAXPROCS=\"") + env +
                           "\": not a worker count (expected 1.." + std::to_string(max_procs) +
                           ")");
    return static_cast<unsigned>(v);
}

unsigned hardware_procs() noexcept {
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

// What the next runtime would use; never throws (a bad GORO_MAXPROCS is
// reported when a runtime starts).
unsigned default_procs() noexcept {
    try {
        if (unsigned n = procs_from_env()) return n;
    } catch (const misuse_error&) {
    }
    return hardware_procs();
}

// The worker count for opts, validated (options::procs, then GORO_MAXPROCS).
unsigned checked_procs(const options& opts) {
    if (opts.procs > max_procs)
        throw misuse_error("goro: options::procs = " + std::to_string(opts.procs) +
                           ": too many workers (expected 0..." + std::to_string(max_procs) +
                           ", 0 = GORO_MAXPROCS or the hardware)");
    unsigned env = procs_from_env();  // validated even when opts.procs overrides it
    if (opts.procs) return opts.procs;
    return env ? env : hardware_procs();
}

// A thread's default stack reservation: what run()'s main goroutine gets
// unless options::main_stack_size says otherwise.
constexpr std::size_t default_main_stack = std::size_t{8} << 20;

// The main goroutine's stack reservation for opts (validated: misuse_error
// naming the option when out of range). Call with the runtime started (the
// pool's slot size is known).
std::size_t main_stack_bytes(const options& opts) {
    if (opts.main_stack_size == 0)
        return std::max(default_main_stack, stack_pool::instance().slot_size());
    return opts.main_stack_size;
}

void check_main_stack_size(const options& opts) {
    const std::size_t n = opts.main_stack_size;
    if (n != 0 && (n < min_stack_size || n > max_stack_size))
        throw misuse_error("goro::run: options::main_stack_size = " + std::to_string(n) +
                           ": out of range (expected 0 for 8 MiB, or " +
                           std::to_string(min_stack_size) + ".." + std::to_string(max_stack_size) +
                           " bytes)");
}

scheduler* start_locked(const options& opts, const run_mode* mode = nullptr) {
    const unsigned procs = mode ? 1 : checked_procs(opts);
    const unsigned blocking_threads = read_blocking_threads(opts.blocking_threads);
    stack_pool::instance().configure(opts.stack_size);
    blocking_pool::instance().set_max(blocking_threads);
    install_overflow_handler();
    // Worker slots for goro::set_procs to raise the count into later.
    auto* s = new scheduler(procs, mode ? 1 : std::max(procs, hardware_procs()));
    s->detect_deadlock = opts.detect_deadlock || mode;
    if (mode) {
        bubble_random_state.store(mode->seed * 0x9E3779B97F4A7C15ULL | 1,
                                  std::memory_order_relaxed);
        // A bubble: its virtual clock starts at the real now and stands
        // still until every goroutine of the bubble is blocked.
        s->virtual_time = true;
        virtual_clock_ns.store(real_now_ns(), std::memory_order_relaxed);
        virtual_clock_on.store(true, std::memory_order_seq_cst);
    }
    s->start();
    g_sched.store(s, std::memory_order_release);
    // Timers of the process wait for a runtime on the real clock.
    if (!mode) {
        for (timer_node* t : carried_timers) s->timer_add(t);
        carried_timers.clear();
    }
    return s;
}

void release_carried_timers() noexcept {
    for (timer_node* t : carried_timers)
        if (t->release) t->release(t);
    carried_timers.clear();
}

// Shutdown (the steps are in scheduler/scheduler.hpp). Called with
// lifecycle_mu held and no run() body active.
//
// 1. The flag, then one scan (both seq_cst; the worker's side is
//    scheduler::finish_park): every goroutine whose park has finished and that
//    does not wait through shutdown is claimed, then — outside the stack
//    pool's lock — readied to unwind.
// 2. Sleep on exit_seq until no goroutine is left. Goroutines running at step
//    1 unwind at their next blocking call; parks that wait through shutdown
//    (wait_group::wait, and anything blocking in a destructor during
//    unwinding) complete as the others unwind; pinned parks (goro::blocking)
//    complete when their function returns. Then wait for the blocking calls
//    still in flight, and repeat while goroutines are left (a call's
//    function may have started one).
// 3. When nothing has exited for a while, every goroutine left is parked
//    waiting through shutdown, no blocking call is in flight and no timer is
//    due within 5 s, nothing but a plain thread could wake them: first
//    unwind the wait_group and lock waits, one waited-on object at a time
//    (after `unwind_waits_after` quiet rounds), then, if only parks in
//    destructors are left, report and abandon them (after `abandon_after`
//    quiet rounds): claimed, never resumed, stacks never reused.
// 4. Stop the workers.
constexpr std::int64_t quiet_round_ns = 20'000'000;  // 20 ms
constexpr int unwind_waits_after = 2;                // 40 ms with no exit
constexpr int abandon_after = 25;                    // 0.5 s with no exit
// Plain threads that still start goroutines this long into a shutdown are
// kept out from then on (scheduler::closed_to_plain_threads).
constexpr std::int64_t plain_feed_grace_ns = 100'000'000;  // 100 ms
// A timer due within this may still wake a goroutine parked through
// shutdown (a destructor that sleeps, or waits on a timer): not stuck yet.
constexpr std::int64_t timer_grace_ns = 5'000'000'000;
// A goroutine that has run this long without blocking since the shutdown
// began (a busy loop, a long computation) is abandoned (abandon_spinners).
constexpr std::int64_t spin_grace_ns = 1'000'000'000;  // 1 s

// Calls f(g, word) for every goroutine record there is.
template <class F>
void for_each_record(F&& f) {
    for_each_goroutine_record([&](goroutine* g) { f(g, g->word.load(std::memory_order_seq_cst)); });
}

constexpr bool parked_with(std::uint64_t v, std::uint64_t bit) {
    return (v & (park_bits::claimed | bit)) == bit;
}

void mark_abandoned(goroutine* g) noexcept {
    g->abandoned.store(true, std::memory_order_relaxed);
    // Its stack is never freed nor reused: what it refers to (an exception
    // in flight, say) is not a leak. Let LeakSanitizer look there.
    san::lsan_root(reinterpret_cast<void*>(g->slot->lo), g->slot->hi - g->slot->lo);
}

void report_abandoned(goroutine* g) {
    mark_abandoned(g);
    std::fprintf(stderr,
                 "goro: shutdown: abandoning goroutine %llu (created at %s:%u), blocked in "
                 "%s in a destructor during unwinding with nothing left to wake it; its "
                 "stack is leaked\n",
                 static_cast<unsigned long long>(g->id), g->where.file_name(),
                 static_cast<unsigned>(g->where.line()),
                 to_string(g->reason.load(std::memory_order_relaxed)));
}

// Claims the goroutines parked with `bit`: all of them (object null, only
// null), or those waiting on `object`, or just `only`.
std::vector<goroutine*> claim_parked(std::uint64_t bit, const void* object, goroutine* only) {
    std::vector<goroutine*> claimed;
    for_each_record([&](goroutine* g, std::uint64_t v) {
        if (!parked_with(v, bit)) return;
        if (object ? g->waiting_on.load(std::memory_order_relaxed) != object : only && g != only)
            return;
        if (g->word.compare_exchange_strong(v, v | park_bits::claimed, std::memory_order_acq_rel))
            claimed.push_back(g);
    });
    return claimed;
}

// Step 3, after `quiet` rounds with no exit. True if it acted. Stuck means:
// every goroutine left is parked waiting through shutdown, and no timer is
// due soon (one may wake them: a sleep in a destructor, a timer channel).
// The wait_group and lock waits are unwound one waited-on object at a time,
// the newest goroutine's first: its waiters are the innermost (a child's
// wait inside a parent's), and unwinding them may let the others finish
// normally, as a parent must not unwind and free a wait_group its children
// still use.
bool resolve_stuck(scheduler* s, int quiet) {
    if (quiet < unwind_waits_after) return false;
    std::int64_t waits = 0, exempt = 0;
    goroutine* newest = nullptr;
    for_each_record([&](goroutine* g, std::uint64_t v) {
        if (parked_with(v, park_bits::parked_waits)) {
            ++waits;
            if (!newest || g->id > newest->id) newest = g;
        }
        if (parked_with(v, park_bits::parked_exempt)) ++exempt;
    });
    if (waits + exempt == 0 || waits + exempt != s->live()) return false;
    // A blocking call in flight (goro::blocking) will return and may wake
    // them (its caller is parked pinned, or was unwound and left the
    // function running): not stuck while one is.
    if (blocking_pool::instance().in_flight() != 0) return false;
    const std::int64_t next_timer = s->next_deadline.load(std::memory_order_acquire);
    // (Not next_timer - now: a deadline saturated to the clock's minimum
    // would overflow it.)
    if (next_timer != no_deadline && next_timer < now_ns() + timer_grace_ns) return false;
    if (waits > 0) {
        const void* object = newest->waiting_on.load(std::memory_order_relaxed);
        for (goroutine* g : claim_parked(park_bits::parked_waits, object, newest)) {
            g->unwind_requested = true;
            s->ready(g, false);
        }
        return true;
    }
    if (quiet < abandon_after) return false;
    std::vector<goroutine*> given_up = claim_parked(park_bits::parked_exempt, nullptr, nullptr);
    for (goroutine* g : given_up) report_abandoned(g);
    s->abandoned.fetch_add(static_cast<std::int64_t>(given_up.size()), std::memory_order_seq_cst);
    return true;
}

// Goroutines that never block cannot be unwound: a shutdown that waited for
// them would never end. Each worker's `runs` count (bumped at every switch
// into a goroutine) and `current` are watched from the start of the
// shutdown; a worker that has run one goroutine for spin_grace_ns without a
// switch is lost. A CAS tags its `current` (bit 0) — unless the worker's
// exchange in execute() took g off first: then g did switch back, and is no
// spinner. Then the goroutine is reported and counted as abandoned (its
// stack never reused), and its thread is made a plain thread
// (forget_worker_thread) that goes on running it, detached at stop(), with
// the scheduler leaked (leaked_schedulers). Its goro calls from then on work
// as a plain thread's; when its function returns, goroutine_main freezes the
// thread (it has no worker to switch to); and should it have been switching
// back just as it was tagged, execute() freezes it (lost_worker_switched_back).
// The lost worker is not replaced: with every worker that takes work lost
// (procs(1) and one spinner, say), the goroutines still to unwind can never
// run, and abandon_unrunnable gives them up too.
class spinner_watch {
  public:
    explicit spinner_watch(scheduler* s) : s_(s), seen_(s->workers.size()) {
        const std::int64_t now = real_now_ns();
        for (std::size_t i = 0; i < seen_.size(); ++i)
            seen_[i] = {s->workers[i]->runs.load(std::memory_order_relaxed), now};
    }
    // Abandons the goroutines that have spun past the grace; true if any.
    bool abandon_spinners() {
        const std::int64_t now = real_now_ns();
        bool any = false;
        for (std::size_t i = 0; i < seen_.size(); ++i) {
            worker* w = s_->workers[i];
            // `current` first: the worker counts a run before it names the
            // goroutine (execute, switch_out), so a g read here that has
            // just been switched in comes with a count that differs from
            // the one its spinning predecessor left.
            goroutine* g = w->current.load(std::memory_order_acquire);
            const std::uint64_t runs = w->runs.load(std::memory_order_acquire);
            if (w->lost.load(std::memory_order_relaxed)) continue;
            if (runs != seen_[i].runs || !g) {
                seen_[i] = {runs, now};
                continue;
            }
            if (now - seen_[i].since < spin_grace_ns) continue;
            // Not a spinner but a retry loop that swallows the unwind: each
            // of its blocking calls throws at once, without a switch. It is
            // abandoned at its next one (abandon_swallower, with the
            // message that says so) once abandon_swallowers is set, which
            // the quiet rounds of unwind_all do after about 0.5 s — later
            // than this grace when the shutdown thread gets little CPU.
            // Set it now and give it one more grace; after that it is
            // abandoned as a spinner (it may have swallowed and then spun).
            if (g->unwinds_thrown.load(std::memory_order_relaxed) > 1 &&
                !s_->abandon_swallowers.exchange(true, std::memory_order_acq_rel)) {
                seen_[i].since = now;
                continue;
            }
            if (abandon(w, g, now - seen_[i].since)) any = true;
        }
        return any;
    }

  private:
    // False if g switched back meanwhile after all (then it is no spinner).
    bool abandon(worker* w, goroutine* g, std::int64_t ran_ns) {
        // Tag `current` (bit 0) unless the worker has taken g off it: its
        // exchange in execute() and this CAS decide who was first.
        goroutine* expected = g;
        auto* tagged = reinterpret_cast<goroutine*>(reinterpret_cast<std::uintptr_t>(g) | 1);
        if (!w->current.compare_exchange_strong(expected, tagged, std::memory_order_acq_rel))
            return false;
        mark_abandoned(g);
        std::fprintf(stderr,
                     "goro: shutdown: abandoning goroutine %llu (created at %s:%u): it has run "
                     "for %.1f s without blocking (a loop that never calls a blocking goro "
                     "function, or a long computation) and cannot be unwound; its worker "
                     "thread is left running it, detached, and the runtime's memory is "
                     "leaked\n",
                     static_cast<unsigned long long>(g->id), g->where.file_name(),
                     static_cast<unsigned>(g->where.line()), static_cast<double>(ran_ns) / 1e9);
        w->lost.store(true, std::memory_order_seq_cst);
        forget_worker_thread(w);
        s_->abandoned.fetch_add(1, std::memory_order_seq_cst);
        return true;
    }

    struct seen {
        std::uint64_t runs = 0;
        std::int64_t since = 0;
    };
    scheduler* s_;
    std::vector<seen> seen_;
};

// Every worker that takes work ([0, active)) lost to a spinner, and every
// retired one asleep with no locked goroutine queued: nothing can run the
// goroutines still to unwind (runnable, or parked and claimed).
// Each is reported and abandoned — its destructors never run, its stack is
// never reused — so that run() returns. False while a worker is left.
bool abandon_unrunnable(scheduler* s) {
    const unsigned active = s->active.load(std::memory_order_seq_cst);
    for (unsigned i = 0; i < active && i < s->workers.size(); ++i)
        if (!s->workers[i]->lost.load(std::memory_order_seq_cst)) return false;
    // A retired worker (goro::set_procs) that is not lost still runs the
    // goroutines locked to it (goro::lock_os_thread): while it is awake or
    // has one queued, they unwind there (and may ready others). Only when
    // each sleeps retired with nothing queued is nothing left to run.
    const unsigned launched = s->launched.load(std::memory_order_seq_cst);
    for (unsigned i = active; i < launched && i < s->workers.size(); ++i) {
        worker* w = s->workers[i];
        if (w->lost.load(std::memory_order_seq_cst)) continue;
        if (!w->retired.load(std::memory_order_seq_cst) || !w->pinned.empty()) return false;
    }
    std::int64_t n = 0;
    for_each_record([&](goroutine* g, std::uint64_t) {
        const g_state st = g->state.load(std::memory_order_acquire);
        if (st == g_state::free || st == g_state::dead || g->abandoned.load()) return;
        mark_abandoned(g);
        if (++n <= 10)
            std::fprintf(stderr,
                         "goro: shutdown: abandoning goroutine %llu (created at %s:%u), %s: no "
                         "worker is left to unwind it (each runs a goroutine that never "
                         "blocks); its destructors do not run\n",
                         static_cast<unsigned long long>(g->id), g->where.file_name(),
                         static_cast<unsigned>(g->where.line()), to_string(st));
    });
    if (n > 10)
        std::fprintf(stderr, "goro: shutdown: ... and %lld more goroutines abandoned so\n",
                     static_cast<long long>(n - 10));
    s->abandoned.fetch_add(n, std::memory_order_seq_cst);
    return n > 0;
}

// Goroutines locked (goro::lock_os_thread) to a lost worker's thread: they
// can run nowhere else, and that thread runs a spinner for ever (or sleeps
// for ever, lost_worker_switched_back), so once readied into its pinned
// queue — claimed for the unwind, or woken later — they never run. Taken
// off that queue (a locked FIFO: any thread may pop) and abandoned, so
// that run() returns while other workers are left (abandon_unrunnable
// handles the case where none is). True if any was.
bool abandon_pinned_to_lost(scheduler* s) {
    std::int64_t n = 0;
    for (worker* w : s->workers) {
        if (!w->lost.load(std::memory_order_seq_cst)) continue;
        goroutine* g = nullptr;
        while (w->pinned.pop_batch(&g, 1) == 1) {
            mark_abandoned(g);
            if (++n <= 10)
                std::fprintf(stderr,
                             "goro: shutdown: abandoning goroutine %llu (created at %s:%u): it is "
                             "locked to the thread of a goroutine that never blocks "
                             "(goro::lock_os_thread) and can run nowhere else; its destructors "
                             "do not run\n",
                             static_cast<unsigned long long>(g->id), g->where.file_name(),
                             static_cast<unsigned>(g->where.line()));
        }
    }
    if (n > 10)
        std::fprintf(stderr, "goro: shutdown: ... and %lld more goroutines abandoned so\n",
                     static_cast<long long>(n - 10));
    s->abandoned.fetch_add(n, std::memory_order_seq_cst);
    return n > 0;
}

// A plain thread that calls go() faster than the goroutines unwind keeps
// live() above zero for ever: past plain_feed_grace_ns into the shutdown,
// with goroutines from plain threads still coming, plain threads are kept
// out (they wait for the shutdown to end and start the next runtime, as
// after `closing`); the blocking pool's are not, shutdown waits for them.
void close_to_feeders(scheduler* s) noexcept {
    if (s->closed_to_plain_threads.load(std::memory_order_relaxed)) return;
    if (real_now_ns() - s->shutdown_began_ns < plain_feed_grace_ns) return;
    if (s->external_spawned.load(std::memory_order_seq_cst) == s->external_at_shutdown) return;
    s->closed_to_plain_threads.store(true, std::memory_order_seq_cst);
}

// Steps 2-3: until no goroutine is left. After abandon_after quiet rounds,
// goroutines that swallowed the unwind (catch (...) in a retry loop) are
// abandoned at their next blocking call (abandon_swallower); goroutines that
// never block, after spin_grace_ns (spinner_watch).
void unwind_all(scheduler* s, spinner_watch& spinners) {
    int quiet = 0;
    for (;;) {
        const std::uint32_t seq = s->exit_seq.load(std::memory_order_seq_cst);
        if (s->live() <= 0) return;
        futex_wait_for(&s->exit_seq, seq, quiet_round_ns);
        close_to_feeders(s);
        const bool spun = spinners.abandon_spinners();
        const bool pinned = abandon_pinned_to_lost(s);
        if (abandon_unrunnable(s) || spun || pinned) continue;
        if (s->exit_seq.load(std::memory_order_seq_cst) != seq) {
            quiet = 0;
            continue;
        }
        if (++quiet >= abandon_after) s->abandon_swallowers.store(true, std::memory_order_release);
        if (resolve_stuck(s, quiet)) quiet = 0;
    }
}

void shutdown_locked(scheduler* s) {
    s->shutdown_began_ns = real_now_ns();
    s->external_at_shutdown = s->external_spawned.load(std::memory_order_seq_cst);
    g_shutting_down.store(true, std::memory_order_seq_cst);  // 1
    exit_watch.fetch_or(exit_watch_bits::shutdown, std::memory_order_seq_cst);
    // With no goroutine left (run()'s usual end) there is nothing parked to
    // claim, and the scan would read every record ever made, a cold page
    // each: 6.5 s of 40 for 300k slots on this project's VM
    // (docs/performance.md, fifth session). live() is never below the
    // truth, and one spawned after it is read is handled as one spawned
    // after the scan: by unwind_all.
    std::vector<std::pair<goroutine*, std::uint64_t>> parked;
    if (s->live() > 0)
        for_each_record([&](goroutine* g, std::uint64_t v) {
            if (parked_with(v, park_bits::parked)) parked.emplace_back(g, v);
        });
    for (auto [g, v] : parked) s->claim_for_unwind(g, v);
    spinner_watch spinners(s);
    // 2, 3; then the blocking calls still in flight (their callers were
    // unwound, or wait pinned) — a call's function may start goroutines
    // meanwhile, so until neither is left. The runtime is not closing yet:
    // such a function may still use it (a go(), a timer) without waiting
    // for the lifecycle lock, which this thread holds.
    for (;;) {
        unwind_all(s, spinners);
        blocking_pool::instance().wait_idle();
        if (s->live() <= 0) break;
    }
    // No goroutine left: close the runtime to newcomers — plain threads
    // (wait for those inside a call) and timers (wait for fires in
    // progress). Either may have started a goroutine just before: unwind it
    // too (the runtime stays closed: a late timer no longer fires).
    s->closing.store(true, std::memory_order_seq_cst);
    for (;;) {
        while (plain_users_inside(plain_users.load(std::memory_order_seq_cst)) != 0)
            std::this_thread::yield();
        s->close_timers();
        if (s->live() <= 0) break;
        unwind_all(s, spinners);
    }
    // What the goroutines that exited during shutdown did (their unwinding
    // destructors), before run() returns (TSan: sanitizers/hooks.hpp).
    san::tsan_acquire(&g_shutting_down);
    // The rest is goro's teardown (timers, stacks, the scheduler): TSan
    // ignores it (sanitizers/hooks.hpp).
    san::ignore_scope teardown;
    std::vector<timer_node*> pending;
    s->take_timers(pending);
    std::vector<timer_node*> ended;
    // A bubble's timers are on its virtual clock: they end with it.
    for (timer_node* t : pending) {
        const bool carried =
            !s->virtual_time && (t->outlives_run || (t->outlives_run_if && t->outlives_run_if(t)));
        (carried ? carried_timers : ended).push_back(t);
    }
    s->stop();  // 4
    if (s->virtual_time) virtual_clock_on.store(false, std::memory_order_seq_cst);
    for (timer_node* t : ended)
        if (t->release) t->release(t);
    g_sched.store(nullptr, std::memory_order_seq_cst);
    // A plain thread that found s just before it went is still looking at
    // it (and will see it closing): wait for it before s goes.
    while (plain_users_inside(plain_users.load(std::memory_order_seq_cst)) != 0)
        std::this_thread::yield();
    bool lost = false;
    for (worker* w : s->workers) lost |= w->lost.load(std::memory_order_relaxed);
    if (lost)
        leaked_schedulers.push_back(s);  // a lost worker's thread may still touch it
    else
        delete s;
    exit_watch.fetch_and(static_cast<std::uint8_t>(~exit_watch_bits::shutdown),
                         std::memory_order_seq_cst);
    g_shutting_down.store(false, std::memory_order_seq_cst);
}

// std::exit called on a goroutine (its stack is this one) cannot wait for
// every goroutine to unwind, itself included: then the exit goes ahead
// without shutting down (like Go's os.Exit, nothing is unwound).
void shutdown_at_exit() {
    if (this_goroutine_record()) return;
    lock_scope lk(lifecycle_mu);
    if (scheduler* s = g_sched.load(std::memory_order_acquire); s && !run_active)
        shutdown_locked(s);
    release_carried_timers();  // the process ends: they never fire
}

}  // namespace

namespace {

// Parks g for ever, counted as abandoned (so that shutdown goes on; the
// caller reported it), pinned with nobody to ready it — never resumed, its
// stack leaked, as report_abandoned.
[[noreturn]] void park_abandoned(goroutine* g) noexcept {
    scheduler* s = current_scheduler();
    begin_park(g);
    // Counted before it parks: shutdown may go on meanwhile, and stops the
    // workers only after this park has switched away (they are joined).
    s->abandoned.fetch_add(1, std::memory_order_seq_cst);
    s->exit_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&s->exit_seq, 1);
    park(wait_reason::none, nullptr, nullptr, park_mode::pinned, nullptr);
    std::abort();  // nothing readies it
}

}  // namespace

// A goroutine that swallowed the shutdown unwind and blocks again after
// shutdown gave up on such goroutines (throw_unwind, park.cpp).
[[noreturn]] void abandon_swallower(goroutine* g) noexcept {
    mark_abandoned(g);
    std::fprintf(stderr,
                 "goro: shutdown: abandoning goroutine %llu (created at %s:%u): it caught the "
                 "shutdown unwind %u times without rethrowing it (catch (...) without "
                 "`catch (const goro::goroutine_exit&) { throw; }` before it?) and blocked "
                 "again; its stack is leaked\n",
                 static_cast<unsigned long long>(g->id), g->where.file_name(),
                 static_cast<unsigned>(g->where.line()),
                 g->unwinds_thrown.load(std::memory_order_relaxed) - 1);
    park_abandoned(g);
}

// A goroutine at the end of a chain of spawns during shutdown, each by the
// unwinding of the one before (park.cpp, throw_unwind): unwinding it would
// start the next, and shutdown would never end. Abandoned instead, at its
// first blocking call: its destructors do not run.
[[noreturn]] void abandon_restarted(goroutine* g) noexcept {
    mark_abandoned(g);
    std::fprintf(stderr,
                 "goro: shutdown: abandoning goroutine %llu (created at %s:%u), the %u-th in a "
                 "chain of goroutines each started while the one before was unwound by the "
                 "shutdown (a destructor that restarts its goroutine?); not unwound, so that "
                 "the chain ends; its stack is leaked\n",
                 static_cast<unsigned long long>(g->id), g->where.file_name(),
                 static_cast<unsigned>(g->where.line()), g->shutdown_generation);
    park_abandoned(g);
}

[[noreturn]] void freeze_lost_thread() noexcept {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

scheduler* start_lazily_locked(const options& opts = options{}) {
    if (!atexit_hooked) {
        std::atexit(&shutdown_at_exit);
        atexit_hooked = true;
    }
    return start_locked(opts);
}

scheduler* current_scheduler() noexcept {
    return g_sched.load(std::memory_order_acquire);
}

bool run_is_active() noexcept {
    return run_active_flag.load(std::memory_order_acquire);
}

namespace {

// Starts a runtime lazily if none runs (a closing one is gone once we hold
// the lifecycle lock).
void start_if_none() {
    lock_scope lk(lifecycle_mu);
    if (!g_sched.load(std::memory_order_acquire)) start_lazily_locked();
}

}  // namespace

// goro::set_procs with no runtime running: starts the process-wide one with
// n workers. False if one runs (it started meanwhile).
bool start_lazily_with_procs(unsigned n) {
    lock_scope lk(lifecycle_mu);
    if (g_sched.load(std::memory_order_acquire)) return false;
    options opts;
    opts.procs = n;
    start_lazily_locked(opts);
    return true;
}

runtime_use::runtime_use(bool start) {
    if (this_worker()) {  // a goroutine or a worker's own loop: its runtime is alive
        s_ = g_sched.load(std::memory_order_acquire);
        return;
    }
    for (;;) {
        plain_users.fetch_add(plain_user_entry, std::memory_order_seq_cst);
        scheduler* s = g_sched.load(std::memory_order_seq_cst);
        // Kept out (closed_to_plain_threads) are only uses that may start a
        // runtime: a spawn, the poller. Never ready() (start false), which
        // may finish a wake whose claim it already made: kept out, the
        // claimed goroutine would never run, and shutdown wait for it.
        if (s && !s->closing.load(std::memory_order_seq_cst) &&
            !(start && s->closed_to_plain_threads.load(std::memory_order_seq_cst) &&
              !blocking_pool::on_pool_thread())) {
            s_ = s;
            counted_ = true;
            return;
        }
        plain_users.fetch_sub(1, std::memory_order_seq_cst);
        if (!s && !start) return;
        // None, or one shutting down: shutdown holds the lifecycle lock until
        // it is gone; then start (or find) the next one.
        if (start)
            start_if_none();
        else {
            lock_scope lk(lifecycle_mu);
        }
    }
}

runtime_use::~runtime_use() {
    if (counted_) plain_users.fetch_sub(1, std::memory_order_seq_cst);
}

scheduler* ensure_runtime() {
    if (this_worker()) return g_sched.load(std::memory_order_acquire);
    // A plain thread: the result is only a hint (the runtime may end as
    // soon as this returns); touch it through runtime_use.
    runtime_use use(true);
    return use.get();
}

namespace {

// run()'s main goroutine called goro::exit: like a Go program whose main
// called Goexit, the others go on; run() returns once none is left (or
// throws deadlock_error when a detected deadlock leaves them stuck). The
// caller parks again as run()'s caller: the exit that leaves no goroutine
// readies it (exit_watched), or a detected deadlock does.
void wait_for_goroutines(scheduler* s, parker* caller) {
    if (s->deadlocked.load(std::memory_order_acquire)) return;
    begin_park(caller);
    exit_watch.fetch_or(exit_watch_bits::main_exited, std::memory_order_seq_cst);
    if (s->live() <= 0 && claim(caller)) ready(caller);  // none left already
    park(wait_reason::run, nullptr, nullptr);
    exit_watch.fetch_and(static_cast<std::uint8_t>(~exit_watch_bits::main_exited),
                         std::memory_order_seq_cst);
}

}  // namespace

int run_main(const options& opts, void (*entry)(void*), void* fn, int*) {
    return run_main_in(opts, entry, fn, nullptr);
}

int run_main_in(const options& opts, void (*entry)(void*), void* fn, const run_mode* mode) {
    if (this_goroutine_record())
        throw misuse_error("goro::run: called from inside a goroutine (use goro::go)");
    // Before the lifecycle lock: it goes through the signal registry, whose
    // lock is outer to it. Once per process, for a new or an adopted runtime.
    if (opts.dump_on_sigquit) install_sigquit_dump();
    scheduler* s;
    {
        lock_scope lk(lifecycle_mu);
        if (run_active) throw misuse_error("goro::run: another goro::run is already active");
        check_main_stack_size(opts);
        const unsigned procs = checked_procs(opts);
        const unsigned blocking_threads = read_blocking_threads(opts.blocking_threads);
        // Here too (start_locked does it as well): an adopted runtime skips
        // start_locked, and stack_size was neither checked nor applied. The
        // pool takes a new size at any time (stacks of the old one stay
        // valid until released).
        stack_pool::instance().configure(opts.stack_size);
        s = g_sched.load(std::memory_order_acquire);
        if (s && ((opts.procs != 0 && procs != s->active.load(std::memory_order_relaxed)) || mode ||
                  (opts.detect_deadlock && !s->detect_deadlock))) {
            // A lazily started runtime with another shape (or a bubble, which
            // needs a runtime of its own, or deadlock detection, which the
            // lazy runtime has off and its monitor reads unlocked): replace it.
            shutdown_locked(s);
            s = nullptr;
        }
        if (!s) s = start_locked(opts, mode);  // throws misuse_error on a bad stack setting
        blocking_pool::instance().set_max(blocking_threads);
        run_active = true;
        run_active_flag.store(true, std::memory_order_release);
    }
    struct main_state {
        void (*entry)(void*);
        void* fn;
        std::exception_ptr error;
        parker* caller;
        std::atomic<bool> exited{false};  // main called goro::exit
    } st{entry, fn, nullptr, current_parker()};

    begin_park(st.caller);
    s->run_caller.store(st.caller, std::memory_order_release);
    spawn_sized(
        [&st, s] {
            // However it ends (returned, threw, or unwound by the shutdown
            // after a detected deadlock), the caller is readied last (unless
            // a deadlock readied it first).
            struct finish {
                main_state& st;
                ~finish() {
                    if (claim(st.caller)) ready(st.caller);
                }
            } on_exit{st};
            try {
                st.entry(st.fn);
            } catch (const exit_unwind&) {
                st.exited.store(true, std::memory_order_release);
                return;
            } catch (const goroutine_unwind&) {
                throw;
            } catch (...) {
                st.error = std::current_exception();
            }
            s->main_returned.store(true, std::memory_order_release);
        },
        goro::source_location::current(), main_stack_bytes(opts), "goro::run");
    park(wait_reason::run, nullptr, nullptr);
    if (st.exited.load(std::memory_order_acquire)) wait_for_goroutines(s, st.caller);

    std::string deadlock;
    {
        lock_scope lk(lifecycle_mu);
        if (s->deadlocked.load(std::memory_order_acquire)) deadlock = s->deadlock_report;
        shutdown_locked(s);
        run_active = false;
        run_active_flag.store(false, std::memory_order_release);
        // Process timers left over, or plain threads still waiting on a
        // descriptor (every goroutine's wait is unwound by now): they need
        // a runtime to fire them and to poll for them.
        poller* p = poller::if_active();
        if (!carried_timers.empty() || (p && p->has_waiters())) start_lazily_locked();
    }
    if (!deadlock.empty()) throw deadlock_error(deadlock);
    if (st.error) std::rethrow_exception(st.error);
    return 0;
}

}  // namespace goro::detail

namespace goro {

unsigned maxprocs() noexcept {
    if (detail::scheduler* s = detail::current_scheduler())
        return s->active.load(std::memory_order_relaxed);
    return detail::default_procs();
}

unsigned get_procs() noexcept {
    return maxprocs();
}

namespace {

unsigned set_procs_of(detail::scheduler* s, unsigned n) {
    using namespace detail;
    if (s->virtual_time) {
        if (n == 1) return 1;
        throw misuse_error("goro::set_procs(" + std::to_string(n) +
                           "): inside goro::testing::bubble, which runs on one worker by design");
    }
    if (n > s->nprocs)
        throw misuse_error("goro::set_procs(" + std::to_string(n) + "): more than the " +
                           std::to_string(s->nprocs) +
                           " worker slots of the running runtime (the larger of the worker "
                           "count it started with and the hardware threads); start it with "
                           "options::procs or GORO_MAXPROCS >= " +
                           std::to_string(n) + " to go this high");
    const unsigned old = s->set_active(n);
    // Called from a goroutine on a worker it just retired: move to one that
    // takes work, so that from here on at most n workers run goroutines.
    // (No worker: its thread was forgotten since, by a shutdown.)
    if (goroutine* g = this_goroutine_record(); g && !g->pinned_to && !shutting_down())
        if (worker* w = this_worker(); w && w->index >= n) goro::yield();
    return old;
}

}  // namespace

unsigned set_procs(int n) {
    using namespace detail;
    if (n < 1) return get_procs();  // GOMAXPROCS(n < 1): a query
    if (static_cast<unsigned>(n) > max_procs)
        throw misuse_error("goro::set_procs(" + std::to_string(n) +
                           "): too many workers (at most " + std::to_string(max_procs) + ")");
    const auto want = static_cast<unsigned>(n);
    for (;;) {
        {
            runtime_use use(false);  // the running runtime, kept alive meanwhile
            if (scheduler* s = use.get()) return set_procs_of(s, want);
        }
        // None runs: start the process-wide one with n workers, as go()
        // starts one (a goro::run then adopts it unless its options differ).
        const unsigned before = default_procs();
        if (start_lazily_with_procs(want)) return before;
    }
}

std::size_t num_goroutines() noexcept {
    detail::scheduler* s = detail::current_scheduler();
    if (!s) return 0;
    std::int64_t n = s->live();
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace goro
