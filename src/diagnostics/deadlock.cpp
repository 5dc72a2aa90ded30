// diagnostics/deadlock.cpp — "all goroutines are asleep - deadlock!", and
// the bubble's virtual clock.
//
// A deadlock is declared when every goroutine is parked and nothing but a
// goroutine could end any of their waits:
//   - nothing is runnable (every queue empty, every worker idle);
//   - no timer is pending (a sleep, a ticker, a context deadline, an
//     after_func may wake someone: never a false positive while one is);
//   - no goroutine waits on a descriptor (the network may answer);
//   - no goro::blocking call is in flight (offload/blocking_pool.hpp);
//   - no plain thread is inside a goro call or parked in one (it may send,
//     unlock, cancel). A plain thread that is outside goro right now but
//     will call in later cannot be seen: that is why outside a bubble the
//     check is opt-in (options::detect_deadlock) — a program whose plain
//     threads feed its goroutines must not turn it on;
//   - outside a bubble, no signal subscription exists (signal_notify,
//     signal_context: a signal from outside the process may wake one, as in
//     Go, whose checkdead never fires once signal.Notify is in use; the
//     monitor checks it). In a bubble a signal is outside the bubble, as in
//     Go's synctest: waiting for one there is a deadlock.
// In a bubble (one worker, goro::testing::bubble) the worker itself checks
// whenever it runs out of work: either the virtual clock jumps to the next
// timer, or it may be a deadlock. The conditions on the outside are read
// before the queues, a plain thread's entry since then makes the worker
// look again, and it declares at the second check in a row (2 ms on, the
// monitor's poke) that saw no goroutine run, no plain-thread entry and no
// wake in flight between (advance_virtual_clock). Once run()'s main has
// returned the bubble's clock stands still, and in the shutdown it moves
// only while no left goroutine is about to be unwound. Outside, the monitor
// checks every 2 ms and declares only after two checks in a row saw the
// condition with no goroutine run in between.
//
// Declaring: the report (the line and a dump) is written, run()'s caller is
// claimed and readied as if main had returned, `deadlocked` set; run()
// then shuts down as usual (unwinding every goroutine, main included) and
// throws goro::deadlock_error.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <sstream>

#include "fibers/goroutine.hpp"
#include "goro/runtime.hpp"
#include "net/poller.hpp"
#include "offload/blocking_pool.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

bool scheduler::only_goroutines_can_wake() const noexcept {
    if (poller* p = poller::if_active(); p && p->has_waiters()) return false;
    return blocking_pool::instance().in_flight() == 0 &&
           plain_users_inside(plain_users.load(std::memory_order_seq_cst)) == 0 &&
           plain_parked.load(std::memory_order_seq_cst) == 0;
}

void scheduler::declare_deadlock() noexcept {
    if (deadlocked.load(std::memory_order_acquire)) return;
    try {
        std::ostringstream os;
        os << "goro: all goroutines are asleep - deadlock!\n\n";
        goro::dump_goroutines(os);
        deadlock_report = os.str();
    } catch (...) {
        deadlock_report = "goro: all goroutines are asleep - deadlock!\n";
    }
    // Wake run()'s caller as if main had returned: its shutdown unwinds
    // every goroutine, main included, in the usual order (a wait_group's
    // waiter after the goroutines it waits for).
    parker* caller = run_caller.load(std::memory_order_acquire);
    if (!caller || !claim(caller)) return;  // main finished meanwhile: no deadlock
    deadlocked.store(true, std::memory_order_release);
    goro::detail::ready(caller);
}

bool scheduler::advance_virtual_clock(worker* w) noexcept {
    if (stopping.load(std::memory_order_acquire)) return true;
    // What could wake a goroutine from outside is read before the queues: a
    // plain thread (run()'s caller spawning main) pushes its goroutine and
    // then leaves. Read the other way round, a check that fell between the
    // push and the leave saw neither, and declared a deadlock with main
    // runnable. A plain thread that entered since `users` was read (the
    // entry count changed) may have pushed after any_work looked: look again.
    const std::uint64_t users = plain_users.load(std::memory_order_seq_cst);
    if (!only_goroutines_can_wake()) return false;  // sleep; woken or poked, look again
    if (any_work(w)) return true;
    // With no goroutine left (the run is over), a pending timer ends with
    // the bubble: jumping to it would fire it at the bubble's end (a kept
    // context's deadline, done() closed after bubble() returned).
    if (live() <= 0) return false;
    // Once main has returned, the goroutines left are unwound by the
    // shutdown, as in run(), not woken: the clock stands still. It jumped
    // there once (nothing runnable before the shutdown began, or while
    // run()'s caller had claimed a goroutine to unwind and not yet readied
    // it), and left sleepers woke normally after fn had returned, and kept
    // contexts' deadlines fired (Break19Bubble). In the shutdown it moves
    // again only for goroutines that wait through it (a destructor that
    // sleeps while unwinding) and when no unwind is pending; the ready of
    // one wakes this worker.
    if (shutting_down() ? an_unwind_is_pending() : main_returned.load(std::memory_order_acquire))
        return false;
    const std::int64_t next = next_deadline.load(std::memory_order_seq_cst);
    if (next != no_deadline) {
        if (next > virtual_clock_ns.load(std::memory_order_relaxed))
            virtual_clock_ns.store(next, std::memory_order_release);
        run_due_timers(next);
        return true;
    }
    if (deadlocked.load(std::memory_order_acquire)) return false;
    if (plain_users.load(std::memory_order_seq_cst) != users) return true;
    // A plain thread in the middle of a call that wakes a goroutine is not
    // counted once it has left its park: it may have claimed the goroutine
    // and not yet readied it (a wake in flight, seen below), or be about to
    // claim it. So, as the monitor does outside a bubble: declare only at
    // the second check in a row, 2 ms on (the monitor's poke), that found
    // the same, with no goroutine run and no plain-thread entry between.
    const std::uint64_t runs = w->runs.load(std::memory_order_seq_cst);
    if (!bubble_looked_deadlocked || runs != bubble_deadlock_runs ||
        users != bubble_deadlock_users || a_wake_is_in_flight()) {
        bubble_looked_deadlocked = true;
        bubble_deadlock_runs = runs;
        bubble_deadlock_users = users;
        return false;  // sleep; poked in 2 ms, look again
    }
    bubble_looked_deadlocked = false;
    declare_deadlock();
    return true;
}

namespace {

// A park claimed by a waker (or shutdown) that has not readied it yet.
bool claimed_not_readied(std::uint64_t word) noexcept {
    return (word & park_bits::claimed) && (word & (park_bits::all & ~park_bits::claimed));
}

// Whether some record in one of `states` has a park word that `pending`
// accepts. Abandoned records (an earlier shutdown's: claimed, parked for
// good) are skipped: they would look pending for ever (break23).
template <class Pending>
bool any_pending_record(std::initializer_list<g_state> states, Pending pending) noexcept {
    bool found = false;
    for_each_goroutine_record([&](goroutine* g) {
        if (found) return;
        const g_state st = g->state.load(std::memory_order_acquire);
        if (std::find(states.begin(), states.end(), st) == states.end()) return;
        if (g->abandoned.load(std::memory_order_relaxed)) return;
        found = pending(g->word.load(std::memory_order_acquire));
    });
    return found;
}

}  // namespace

// A goroutine parked and claimed by a waker that has not readied it yet.
bool scheduler::a_wake_is_in_flight() noexcept {
    return any_pending_record({g_state::waiting}, claimed_not_readied);
}

// Runnable counts too: ready() marks the goroutine runnable before it
// queues it, and in between no queue shows it.
bool scheduler::an_unwind_is_pending() noexcept {
    return any_pending_record({g_state::waiting, g_state::runnable}, [](std::uint64_t word) {
        return (word & park_bits::parked) || claimed_not_readied(word);
    });
}

}  // namespace goro::detail
