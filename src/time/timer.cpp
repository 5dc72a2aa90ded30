// time/timer.cpp — after, timer, ticker and after_func on the runtime's
// timer heap, with Go 1.23's contract for stop() and reset().
//
// A timer_state is what the user's handles share: the channel (capacity 1
// inside, presented as unbuffered; none for after_func), the function
// (after_func), and `current`, the arm that is allowed to deliver. Each start
// creates a new arm (the heap node). An arm has two references: the state's
// (held through `current`) and the runtime's (from timer_start until the
// runtime's release hook, or until a timer_stop that returned true hands it
// back).
//
// Invariants (under state.mu):
//   - Only `current` delivers: an arm whose fire finds it is no longer
//     current does nothing, so after stop()/reset() no stale value arrives.
//   - A one-shot arm stops being current in the same critical section in
//     which it delivers (sends, or hands f to a new goroutine). So while a
//     one-shot arm is current, its value has not been delivered, and a
//     stop()/reset() that takes it out of `current` cancels the delivery,
//     whether the arm is still in the heap or its fire is already running
//     and waiting for state.mu.
//   - The channel holds at most the one value delivered and not received;
//     stop()/reset() drain it under state.mu. Hence their result: true iff
//     they took out a current one-shot arm or drained a value — that is,
//     unless the value was received (or the timer was already stopped).
//     A value handed by the send straight to a blocked receiver counts as
//     received.
// Ownership (Go 1.23's "an unreferenced timer is collected"): the channel's
// handles own the timer. The user's handles are the channel's only counted
// references (timer and ticker objects hold one too); the core owns the state
// (chan_core::owner) and the state points back at the core without a count.
// When the last handle goes, release_chan_ref calls unreferenced() before it
// frees the core: under state.mu it disarms the current arm and forgets the
// core, then retires the arm (out of the heap, or its running fire waited
// out). So a fire that sends into the core does so under state.mu while it
// is current, which unreferenced() waits for, and none can send after.
// after_func timers have no channel: they run f whether or not the handle
// is kept (Go: AfterFunc), until stopped.
// Lock order: state.mu -> channel lock. Arms are started (the runtime's
// timer lock, maybe the lifecycle lock) after releasing state.mu.
// timer_stop is never called under state.mu (it waits for a running fire,
// which takes state.mu).
#include <atomic>
#include <string>

#include "goro/detail/spin_mutex.hpp"
#include "goro/time.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"
#include "time/outlives_run.hpp"

namespace goro::detail {

struct timer_arm;

struct timer_state : std::enable_shared_from_this<timer_state> {
    spin_mutex mu{lock_rank::timer_state};
    // Not counted (the core owns this state); null for after_func, and once
    // the last handle went (unreferenced).
    chan_core* ch GORO_GUARDED_BY(mu) = nullptr;
    std::function<void()> fn;
    source_location where;
    clock::duration period{0};
    timer_arm* current GORO_GUARDED_BY(mu) = nullptr;
    // Whether a pending arm outlives the run() it was started in
    // (timer_node::outlives_run_if; timer_state_outlives_run_if).
    std::function<bool()> outlives_run_if GORO_GUARDED_BY(mu);
};

struct timer_arm : timer_node {
    std::shared_ptr<timer_state> s;
    std::atomic<int> refs{2};
};

namespace {

// TSan: each reference's uses are released to whoever frees the arm
// (sanitizers/hooks.hpp).
void unref(timer_arm* a, int n = 1) noexcept {
    san::tsan_release(a);
    if (a->refs.fetch_sub(n, std::memory_order_acq_rel) == n) {
        san::tsan_acquire(a);
        delete a;
    }
}

// Empties the channel of a value nobody received. Requires s.mu held.
bool drain(timer_state& s) GORO_REQUIRES(s.mu) {
    if (!s.ch) return false;
    alignas(clock::time_point) unsigned char buf[sizeof(clock::time_point)];
    return chan_recv(s.ch, buf, false) == op_result::done;  // trivially destructible
}

void fire(timer_node* n) {
    auto* a = static_cast<timer_arm*>(n);
    timer_state& s = *a->s;
    bool drop_state_ref = false;
    std::function<void()> run;
    {
        lock_scope lk(s.mu);
        if (s.current != a) return;  // stopped or reset since: stale
        if (s.ch) {
            clock::time_point now = goro::now();
            chan_send(s.ch, &now, false);  // full: a slow reader loses this tick
        } else {
            run = s.fn;
        }
        if (s.period == clock::duration::zero()) {
            s.current = nullptr;  // one-shot: delivered, no longer active
            drop_state_ref = true;
        }
    }
    if (run) {
        // The goroutine acquires fn's state as after_func's caller made it
        // (TSan: a worker's fire does not acquire; sanitizers/hooks.hpp).
        spawn_quiet(
            [st = san::release_ignored<std::shared_ptr<timer_state>>(a->s), f = std::move(run)] {
                san::tsan_acquire(st.p.get());
                f();
            },
            s.where);
    }
    if (drop_state_ref) unref(a);  // the runtime's reference keeps a alive
}

// The runtime is done with the arm: after a one-shot fire (which already
// let go of `current`), or at shutdown with the arm still pending, when the
// arm must also stop being current — else the state and the arm would keep
// each other alive.
void release(timer_node* n) {
    auto* a = static_cast<timer_arm*>(n);
    bool was_current = false;
    {
        timer_state& s = *a->s;
        lock_scope lk(s.mu);
        if (s.current == a) {
            s.current = nullptr;
            was_current = true;
        }
    }
    unref(a, was_current ? 2 : 1);  // the runtime's, and the state's if it was current
}

// The end of a run() found the arm pending: it stays if it is still the
// state's current arm and the state's owner wants it to (asked without
// s.mu: the owner's check takes its own lock).
bool arm_outlives_run(timer_node* n) {
    auto* a = static_cast<timer_arm*>(n);
    std::function<bool()> wanted;
    {
        timer_state& s = *a->s;
        lock_scope lk(s.mu);
        if (s.current != a) return false;
        wanted = s.outlives_run_if;
    }
    return wanted && wanted();
}

// Makes a new arm current for s, due d from now ("never" if that
// overflows); requires s.mu held and s.current null. The caller starts it
// with start() after releasing s.mu (starting may have to start a runtime,
// which takes the lifecycle lock: lock_rank.hpp). A stop() in between is
// fine: it disarms the arm (the stop result counts it as active), and the
// start that follows only puts a stale arm in the heap, which the runtime
// drops when it comes due.
timer_arm* arm(timer_state& s) GORO_REQUIRES(s.mu) {
    auto* a = new timer_arm;
    a->s = s.shared_from_this();
    a->fire = &fire;
    a->release = &release;
    a->outlives_run_if = &arm_outlives_run;
    a->period = s.period;
    s.current = a;
    san::tsan_release(a);  // its making, to whoever frees it (TSan)
    return a;
}

void start(timer_arm* a, clock::duration d) {
    timer_start(a, saturating_add(goro::now(), d));
}

// Takes s.current out and returns it (the state's reference comes along).
timer_arm* disarm(timer_state& s) GORO_REQUIRES(s.mu) {
    timer_arm* a = s.current;
    s.current = nullptr;
    return a;
}

// Finishes a disarm outside s.mu: takes the arm out of the heap, or waits
// out its running fire (which will find it stale), and drops it.
void retire(timer_arm* a) {
    if (!a) return;
    if (timer_stop(a)) unref(a);  // the runtime gave its reference back
    unref(a);                     // the state's
}

// Whether a stop/reset that disarmed `a` and drained (or not) found the
// value unreceived. A current periodic arm counts as active too.
bool was_active(const timer_arm* a, bool drained) {
    return a != nullptr || drained;
}

// The channel's last handle went: nothing can receive from it any more, so
// the timer is stopped and its arm released (the header's Ownership).
void unreferenced(chan_core* c) noexcept {
    san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    auto* s = static_cast<timer_state*>(c->owner.get());
    timer_arm* a;
    {
        lock_scope lk(s->mu);
        a = disarm(*s);
        s->ch = nullptr;
    }
    retire(a);
}

}  // namespace

timer_parts make_timer(clock::duration d, clock::duration period, std::function<void()> fn,
                       const source_location& where) {
    return make_timer_outliving_run_if(d, period, std::move(fn), where, {});
}

timer_parts make_timer_outliving_run_if(clock::duration d, clock::duration period,
                                        std::function<void()> fn, const source_location& where,
                                        std::function<bool()> wanted) {
    san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    auto s = std::make_shared<timer_state>();
    chan_ref ch;
    if (!fn) {
        ch = make_chan_core(&elem_ops_for<clock::time_point>, 1);
        ch->timer_chan = true;
        ch->owner = s;
        ch->on_unreferenced = &unreferenced;
    }
    s->fn = std::move(fn);
    s->where = where;
    s->period = period;
    san::tsan_release(s.get());  // fn, to the fires that copy it (TSan: sanitizers/hooks.hpp)
    timer_arm* a;
    {
        lock_scope lk(s->mu);
        s->ch = ch.get();
        s->outlives_run_if = std::move(wanted);
        a = arm(*s);
    }
    start(a, d);
    return {std::move(s), chan_access::make<recv_chan<clock::time_point>>(std::move(ch))};
}

bool timer_state_stop(timer_state& s) {
    san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    timer_arm* a;
    bool drained;
    {
        lock_scope lk(s.mu);
        a = disarm(s);
        drained = drain(s);
    }
    retire(a);
    return was_active(a, drained);
}

bool timer_state_reset(timer_state& s, clock::duration d, clock::duration period) {
    san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    timer_arm* old;
    timer_arm* fresh;
    bool drained;
    {
        lock_scope lk(s.mu);
        old = disarm(s);
        drained = drain(s);
        s.period = period;
        fresh = arm(s);
    }
    start(fresh, d);
    retire(old);
    return was_active(old, drained);
}

void throw_moved_from(const char* who) {
    throw misuse_error(std::string(who) + ": called on a moved-from handle");
}

}  // namespace goro::detail
