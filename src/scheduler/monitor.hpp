// scheduler/monitor.hpp — the scheduler's monitor thread (Go's sysmon).
//
// Every `interval` it looks at each worker:
//   - a worker that has run the same goroutine for over `stuck_after` (a
//     long computation, a blocking system call, a std::future wait) while
//     goroutines wait in its runnext slot or local queue: wake an idle
//     worker to take them (the thief takes a runnext that has sat there that
//     long, scheduler.hpp). So a readied goroutine runs within about
//     stuck_after + interval whenever a worker is idle, whatever its readier
//     does, without every ready() waking a worker (which costs a ping-pong
//     pair twice its time).
//   - a worker's spawn stack (goroutines spawned there, run newest first)
//     whose oldest entry has sat for `stuck_after` while the worker ran
//     others: hand that entry to the global queue (and wake an idle worker),
//     then the clock restarts (one entry per stuck_after; one per 100 ms
//     while the last one handed on lives). So a goroutine spawned under a
//     stream of newer spawns still starts, at procs = 1 too. Not in a
//     bubble (its schedule must not depend on real time).
//   - timers: when the earliest timer is overdue by `timer_overdue`, the
//     worker that watched the timers is busy elsewhere (typically stuck in
//     the goroutine their last batch readied) and the idle workers sleep
//     without a timeout: wake one to run them. So a sleeper wakes within
//     about interval + timer_overdue of its deadline whenever a worker is
//     idle, whatever the others run.
//   - the network: if goroutines wait on descriptors and nobody has polled
//     for `poll_after`, poll without blocking (the readied goroutines go to
//     the global queue).
// A worker counts the goroutine runs it starts (`runs`) and shows the one it
// runs (`current`); the monitor sees a worker stuck when `runs` stands
// still for stuck_after while `current` is set. It records since when (for
// goroutine dumps).
//
// While every worker is idle it sleeps deep (until a worker wakes from an
// idle sleep and pokes it, or SIGQUIT asks for a dump; at most 10 s): an
// idle runtime costs no CPU. Its futex word has static storage, so that the
// SIGQUIT handler can bump it without racing a monitor's destruction (a
// monitor left behind by a leaked runtime may share it: a wake is only a
// reason to look again). Whoever ends a deep sleep refreshes the coarse
// clock first, so a park right after a long idle spell does not record a
// stale time.
// Workers retired by goro::set_procs, and slots not launched, count as idle
// here and in the deadlock check (`parked_workers`); a retired worker pokes
// it when it wakes.
//
// Lock order: the monitor takes no lock but the idle list's (through
// wake_one) and whatever ready() takes.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace goro::detail {

struct scheduler;
struct worker;

// The monitors' futex word: bumped, then woken, to make every monitor look
// again (monitor::poke, stop, and the SIGQUIT handler: async-signal-safe).
extern std::atomic<std::uint32_t> monitor_wake_word;
void wake_monitors() noexcept;

class monitor {
  public:
    explicit monitor(scheduler& s);
    void start();
    void stop() noexcept;  // joins
    // A worker woke from an idle (or retired) sleep: if the monitor sleeps
    // deep (every worker was idle), wake it to watch again. One relaxed load
    // otherwise.
    void poke() noexcept {
        if (deep_.load(std::memory_order_seq_cst)) poke_slow();  // a plain load on x86
    }

  private:
    void loop() noexcept;
    void check_workers(std::int64_t now) noexcept;
    void check_deadlock() noexcept;
    void check_timers(std::int64_t now) noexcept;
    bool all_asleep() const noexcept;
    bool can_sleep_deep() const noexcept;
    void poke_slow() noexcept;

    struct seen {
        std::uint64_t runs = 0;
        std::int64_t since = 0;  // when `runs` was first seen
        // The spawn stack's count of entries taken from its oldest end, and
        // since when it has stood still with entries waiting.
        std::int64_t spawn_taken = -1;
        std::int64_t spawn_since = 0;
        std::int64_t last_rescue = 0;
    };
    void rescue_oldest_spawn(worker* w, seen& sn, std::int64_t now) noexcept;
    scheduler& s_;
    std::vector<seen> seen_;
    bool was_asleep_ = false;  // the last check saw every goroutine asleep
    std::uint64_t asleep_runs_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> deep_{false};  // asleep for deep_interval (monitor.cpp)
    std::thread thread_;
};

}  // namespace goro::detail
