// scheduler/idle.hpp — the scheduler's sleeping side, as one unit: which
// workers are idle, how many spin looking for work, which idle worker
// watches the timers, and how a worker sleeps and is woken.
//
// Idle protocol (no lost wake-ups; Go's wakep/spinning rules). Step labels
// are used in idle.cpp and scheduler/worker.cpp:
//   submitter:  A1 make work visible (local/global queue, runnext, timer)
//               A2 seq_cst fence
//               A3 if idle workers exist and none is spinning: CAS spinning
//                  0 -> 1, pop an idle worker, wake it (wake_reason::spin:
//                  it starts out spinning, counted by the waker)
//   worker:     B1 register in the idle list (idle count + 1)
//               B2 stop spinning (spinning count - 1)
//               B3 seq_cst fence
//               B4 recheck every queue and the timer deadline; if work:
//                  unregister (or, if a waker popped it already, take the
//                  wake) and look again
//               B5 watch its wake word for ~20 us (a wake then costs no
//                  system call), then sleep in the kernel, with a timeout
//                  if it is the timer watcher
//   Either A3 sees B1 (and wakes someone), or B4 sees A1. While one worker
//   spins, submitters wake nobody: the spinner finds the work, and when the
//   last spinner stops spinning with work in hand it wakes another.
//   At most half the busy workers spin at once.
//
// Timer watcher: of the idle workers, at most one (the watcher) sleeps with
// a timeout, until the earliest timer deadline it saw (watcher_until_). A
// timer added earlier than that pokes it (wake_reason::recheck); if no
// worker watches and none spins, it wakes an idle one. Only the watcher
// writes watcher_until_. While any goroutine waits on a descriptor, the
// watcher sleeps in the network poller's epoll_wait instead of on its futex
// (with or without a timer deadline), delivering I/O readiness as it comes;
// a goroutine that starts waiting on a descriptor makes sure one does
// (poller_needed).
//
// The OS sleep is behind wake_slot: a futex on the slot's word today; the
// network poller's worker will sleep in epoll_wait with an eventfd kick
// behind the same two calls.
//
// Lock order: the idle list's lock (lock_rank::idle) is a leaf; wakes are
// delivered after releasing it.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "diagnostics/counters.hpp"
#include "goro/detail/thread_annotations.hpp"
#include "parking/ranked_mutex.hpp"

namespace goro::detail {

struct worker;

inline constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

// Why a sleeping worker was woken.
enum class wake_reason : std::uint32_t {
    none = 0,     // not woken: a timed sleep ran out
    spin = 1,     // to look for work, counted as spinning by its waker
    recheck = 2,  // to look again, not spinning: an earlier timer, or stop
};

// One worker's wake word and the OS sleep behind it.
class wake_slot {
  public:
    // B5: waits for a wake until deadline (ns since the clock's epoch;
    // no_deadline: none), first watching the word, then in the kernel: on a
    // futex, or, with `poll`, in epoll_wait of the network poller (whose
    // events it delivers). Returns the wake and clears it, or
    // wake_reason::none on timeout or after delivering network events.
    wake_reason wait(std::int64_t deadline, bool poll = false) noexcept;
    // Delivers r; wakes the sleeper from the kernel if it is there.
    void wake(wake_reason r) noexcept;
    // Sleeps in the kernel so far (written by wait(), its worker's only).
    std::uint64_t futex_sleeps() const noexcept { return futex_sleeps_.get(); }
    std::uint64_t poll_sleeps() const noexcept { return poll_sleeps_.get(); }

  private:
    wake_reason wait_polling(std::int64_t deadline) noexcept;
    // 0 while its worker runs or watches; a wake_reason; or `in_kernel` /
    // `in_poll` while it sleeps in the kernel (a waker must call the OS to
    // wake it: futex_wake, or the poller's eventfd).
    alignas(64) std::atomic<std::uint32_t> word_{0};
    counter futex_sleeps_, poll_sleeps_;
};

class idle_workers {
  public:
    // nprocs: the worker slots; active: how many of them take work
    // (goro::set_procs), which bounds the spinners.
    idle_workers(unsigned nprocs, const std::atomic<unsigned>& active,
                 const std::atomic<std::int64_t>& next_deadline);

    // A2-A3: wake one idle worker to spin, unless one already spins.
    void wake_one() noexcept;
    // A timer due at when_ns was added: make sure some worker will look at
    // it in time.
    void timer_added(std::int64_t when_ns) noexcept;
    // Wakes every worker to look again (the scheduler stops).
    void wake_all(const std::vector<worker*>& all) noexcept;
    // Wakes w to look again if it sleeps in the idle list (a bubble's
    // worker, poked by the monitor).
    void poke_if_idle(worker* w) noexcept;
    // Someone waits on a descriptor: make sure an idle worker polls (the
    // watcher sleeps in epoll_wait while anyone waits on one).
    void poller_needed() noexcept;

    // w starts spinning if fewer than half the busy workers spin (of the
    // active ones: retired workers neither spin nor count as busy).
    bool try_start_spinning(worker* w) noexcept;
    // w found work: it stops spinning; the last spinner wakes another.
    void found_work(worker* w) noexcept;

    // B1-B3.
    void enter(worker* w) noexcept;
    // Leaves the idle list: unregisters, or, if a waker popped w already,
    // takes that wake (and spins if it was wake_reason::spin).
    void leave(worker* w) noexcept;
    // B5, after B4 found nothing: sleeps as the timer watcher if a timer is
    // pending (deadline != no_deadline) and nobody watches, else without a
    // timeout. Returns with w out of the idle list (or timed out: left).
    void sleep(worker* w, std::int64_t deadline) noexcept;

    std::int32_t idle_count() const noexcept { return nidle_.load(std::memory_order_relaxed); }

  private:
    worker* pop_locked() GORO_REQUIRES(mu_);
    bool remove(worker* w) noexcept;  // true if w was in the list
    bool become_watcher(worker* w, std::int64_t deadline) noexcept;

    const unsigned nprocs_;
    const std::atomic<unsigned>& active_;
    const std::atomic<std::int64_t>& next_deadline_;
    alignas(64) std::atomic<std::int32_t> nspinning_{0};
    std::atomic<std::int32_t> nidle_{0};
    ranked_mutex mu_{lock_rank::idle};
    std::vector<worker*> list_ GORO_GUARDED_BY(mu_);
    std::atomic<worker*> watcher_{nullptr};
    std::atomic<std::int64_t> watcher_until_{0};
    std::atomic<bool> watcher_polls_{false};  // the watcher sleeps in epoll_wait
};

}  // namespace goro::detail
