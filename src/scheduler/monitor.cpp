// scheduler/monitor.cpp — the monitor thread; see monitor.hpp.
#include "scheduler/monitor.hpp"

#include <limits>

#include "goro/detail/spin_mutex.hpp"
#include "net/poller.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"
#include "signal/subscriptions.hpp"

namespace goro::detail {

std::atomic<std::int64_t> coarse_clock_ns{0};
std::atomic<std::uint32_t> monitor_wake_word{0};

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;

namespace {

constexpr std::int64_t interval_ns = 2'000'000;  // 2 ms between looks
// While every worker is idle: until a worker wakes or SIGQUIT asks for a
// dump (both wake it), or this long — nothing else needs it meanwhile.
constexpr std::int64_t deep_interval_ns = 10'000'000'000;
constexpr std::int64_t stuck_after_ns = 10'000'000;  // Go's forcePreemptNS is 10 ms too
constexpr std::int64_t poll_after_ns = 10'000'000;   // sysmon polls after 10 ms
// Spawn-stack rescues while the last rescued goroutine lives on: one per
// this (rescue_oldest_spawn).
constexpr std::int64_t rescue_gap_ns = 100'000'000;
// A busy worker runs due timers every 4th pick (microseconds apart) and the
// watcher wakes at the deadline: a timer overdue by a millisecond has nobody
// looking at it.
constexpr std::int64_t timer_overdue_ns = 1'000'000;

}  // namespace

monitor::monitor(scheduler& s) : s_(s) {}

void monitor::start() {
    seen_.assign(s_.workers.size(), seen{});
    coarse_clock_ns.store(real_now_ns(), std::memory_order_relaxed);
    thread_ = std::thread([this] { loop(); });
}

void wake_monitors() noexcept {
    monitor_wake_word.fetch_add(1, std::memory_order_release);
    futex_wake(&monitor_wake_word, std::numeric_limits<int>::max());
}

void monitor::stop() noexcept {
    stopping_.store(true, std::memory_order_release);
    wake_monitors();
    if (thread_.joinable()) thread_.join();
}

void monitor::poke_slow() noexcept {
    if (!deep_.exchange(false, std::memory_order_acq_rel)) return;
    // Stale by as long as every worker slept: a goroutine this worker runs
    // next may park and record it (before the monitor gets to run).
    coarse_clock_ns.store(real_now_ns(), std::memory_order_relaxed);
    wake_monitors();
}

// Whether every worker slot is idle or parked: asleep in the idle list,
// asleep retired (goro::set_procs), or not launched.
bool monitor::all_asleep() const noexcept {
    return s_.idle.idle_count() + s_.parked_workers.load(std::memory_order_seq_cst) ==
           static_cast<std::int32_t>(s_.workers.size());
}

// Whether nothing can need the monitor until a worker wakes: every worker
// idle or parked (so none is stuck, and the timer watcher sleeps with the
// next deadline), no deadlock check or bubble to drive, no dump asked for.
bool monitor::can_sleep_deep() const noexcept {
    // Against a worker's wake: either its poke sees deep_, or this sees the
    // idle count its waker lowered, or the parked count the retired worker
    // lowered before it pokes (deep_ is stored seq_cst before).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return !s_.detect_deadlock && !s_.virtual_time && all_asleep() &&
           !dump_requested.load(std::memory_order_relaxed);
}

void monitor::loop() noexcept {
    san::tsan_ignore_all_begin();  // bookkeeping only (TSan: sanitizers/hooks.hpp)
    int quiet_checks = 0;
    while (!stopping_.load(std::memory_order_acquire)) {
        // After two checks in a row that found every worker idle, sleep
        // deep: until a worker wakes (park_worker pokes) or deep_interval.
        // The 2 ms checks cost ~1% of a core on an idle runtime otherwise.
        const std::uint32_t seq = monitor_wake_word.load(std::memory_order_acquire);
        std::int64_t interval = interval_ns;
        if (can_sleep_deep() && ++quiet_checks >= 2) {
            deep_.store(true, std::memory_order_seq_cst);
            // A worker that woke before the flag was up did not poke: look
            // again after raising it (its wake is seq_cst on the idle list).
            if (can_sleep_deep()) interval = deep_interval_ns;
        } else if (!can_sleep_deep()) {
            quiet_checks = 0;
        }
        futex_wait_for(&monitor_wake_word, seq, interval);
        deep_.store(false, std::memory_order_relaxed);
        const std::int64_t now = real_now_ns();
        coarse_clock_ns.store(now, std::memory_order_relaxed);
        check_workers(now);
        check_timers(now);
        check_deadlock();
        // A bubble's worker sleeps without a deadline (its clock is
        // virtual): make it look again at what outside waits may have ended.
        if (s_.virtual_time)
            for (worker* w : s_.workers) s_.idle.poke_if_idle(w);
        if (dump_requested.exchange(false, std::memory_order_acq_rel)) dump_goroutines_to_stderr();
        if (poller* p = poller::if_active()) p->poll_if_due(now, poll_after_ns);
    }
    san::tsan_ignore_all_end();
}

void monitor::check_workers(std::int64_t now) noexcept {
    for (std::size_t i = 0; i < s_.workers.size(); ++i) {
        worker* w = s_.workers[i];
        const std::uint64_t runs = w->runs.load(std::memory_order_relaxed);
        seen& sn = seen_[i];
        if (!s_.virtual_time) rescue_oldest_spawn(w, sn, now);
        if (runs != sn.runs) {
            sn.runs = runs;
            sn.since = now;
            w->stuck_since.store(0, std::memory_order_relaxed);
            continue;
        }
        if (!w->current.load(std::memory_order_relaxed) || now - sn.since < stuck_after_ns)
            continue;
        // The same goroutine for stuck_after: hand its worker's queue on.
        w->stuck_since.store(sn.since, std::memory_order_relaxed);
        if (w->runnext.load(std::memory_order_relaxed) || !w->rq.empty() || !w->spawns.empty())
            s_.wakep();
    }
}

// A spawn stack whose oldest end has not moved for stuck_after (no thief,
// no pop of the last entry) hands its oldest entry to the global queue,
// which every worker looks at every 61st pick at the latest; the clock
// restarts. But while the last goroutine taken from it has not exited, the
// next waits until rescue_gap has passed since: in a tree of spawns the
// oldest entries wait for the tree above them by design, and each rescue
// starts another branch, whose spawns are alive (each on its own stack)
// until it ends. Without the wait, skynet at procs=1 ran in 0.24-0.97 s
// with 300-25,000 goroutines alive at once, against 0.22-0.32 s and ~55
// without any rescue: each rescue every 10 ms opened a branch, the branches
// slowed the run, and a slower run got more rescues. A goroutine that
// spawns its successor and ends keeps its worker's older spawns waiting;
// they start one per 10 ms (each rescued one exits at once) or one per
// rescue_gap (the rescued ones live on), and a thief takes them sooner
// when a worker is idle.
void monitor::rescue_oldest_spawn(worker* w, seen& sn, std::int64_t now) noexcept {
    const std::int64_t taken = w->spawns.taken_from_bottom();
    if (taken != sn.spawn_taken || w->spawns.empty()) {
        sn.spawn_taken = taken;
        sn.spawn_since = now;
        return;
    }
    if (now - sn.spawn_since < stuck_after_ns) return;
    if (w->rescued_alive.load(std::memory_order_relaxed) > 0 &&
        now - sn.last_rescue < rescue_gap_ns)
        return;
    if (goroutine* g = w->spawns.steal()) {
        g->rescued_from = w;  // before it is queued: nobody else sees it until then
        w->rescued_alive.fetch_add(1, std::memory_order_relaxed);
        s_.push_global(g);
        s_.wakep();
        sn.last_rescue = now;
    }
    sn.spawn_taken = w->spawns.taken_from_bottom();
    sn.spawn_since = now;
}

// options::detect_deadlock (the conditions are in diagnostics/deadlock.cpp):
// two checks in a row, 2 ms apart, that found every worker idle, nothing
// queued, no timer, nothing outside goroutines that could wake one (nor a
// signal subscription: a signal from outside may), and no goroutine run in
// between.
void monitor::check_deadlock() noexcept {
    if (!s_.detect_deadlock || s_.virtual_time || s_.deadlocked.load(std::memory_order_acquire))
        return;
    std::uint64_t runs = 0;
    for (worker* w : s_.workers) runs += w->runs.load(std::memory_order_seq_cst);
    // The outside before the queues: a plain thread pushes, then leaves
    // (diagnostics/deadlock.cpp, advance_virtual_clock).
    const bool asleep = !shutting_down() && all_asleep() && s_.only_goroutines_can_wake() &&
                        !s_.any_work(nullptr) &&
                        s_.next_deadline.load(std::memory_order_seq_cst) == no_deadline &&
                        s_.live() > 0 && !signals_subscribed();
    if (asleep && was_asleep_ && runs == asleep_runs_) s_.declare_deadlock();
    was_asleep_ = asleep;
    asleep_runs_ = runs;
}

// An overdue timer: the worker that watched the timers ran the goroutine
// their last batch readied and is stuck in it (or another long run), while
// the idle workers sleep without a timeout — only one watches. Make one of
// them look (Go's sysmon starts an M when the next timer is overdue);
// timer_added does nothing if a worker spins or a watcher will wake in
// time. Not in a bubble: its timers are on the virtual clock.
void monitor::check_timers(std::int64_t now) noexcept {
    if (s_.virtual_time) return;
    const std::int64_t next = s_.next_deadline.load(std::memory_order_acquire);
    // Compared so that a deadline far in the past (a negative sleep's,
    // saturated to the clock's minimum) cannot overflow.
    if (next == no_deadline || next > now - timer_overdue_ns) return;
    s_.poke_for_timer(next);
}

}  // namespace goro::detail
