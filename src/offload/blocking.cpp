// offload/blocking.cpp — goro::blocking's non-template side: the pinned park
// of blocking(fn), and the three parties of blocking(ctx, fn) — the
// caller's wait, the pool thread's execute, the context's interrupt. The
// records and both protocols are described in goro/detail/blocking_call.hpp.
//
// Invariants: a shared call's `waiting` is non-null only between the
// caller's begin_park and its relock after waking, and is claimed only under
// the call's lock; `state` moves queued -> running -> done (pool thread) or
// queued -> abandoned (the caller, giving up); once `done` the outcome is
// written and the pool thread no longer touches it.
// Lock order: a call's lock is a leaf; ready() is called after releasing it.
#include <memory>

#include "goro/blocking.hpp"
#include "offload/blocking_pool.hpp"
#include "sanitizers/hooks.hpp"

namespace goro::detail {

namespace {

void submit_after_switch(void* t) noexcept {
    blocking_pool::instance().submit(static_cast<blocking_task*>(t));
}

// park()'s unlock callback for a shared call's lock, released after the switch.
void unlock_call(void* m) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    static_cast<spin_mutex*>(m)->unlock();
}

// The context's after-func: the caller stops waiting.
void interrupt(shared_call_base& c) noexcept {
    parker* p = nullptr;
    {
        lock_scope lk(c.mu);
        c.cancelled = true;
        if (c.waiting && claim(c.waiting)) p = c.waiting;
    }
    if (p) ready(p);
}

// The caller leaves before fn's outcome: a call still queued never runs.
void give_up_locked(shared_call_base& c) GORO_REQUIRES(c.mu) {
    if (c.state == call_state::queued) c.state = call_state::abandoned;
}

// The caller's side: until fn's outcome, ctx's interrupt, or shutdown.
call_end wait_shared(shared_call_base& c) GORO_NO_THREAD_SAFETY_ANALYSIS {
    parker* me = current_parker();
    c.mu.lock();
    call_end end = call_end::cancelled;
    for (;;) {
        if (c.state == call_state::done) {
            end = call_end::done;
            break;
        }
        if (c.cancelled) break;
        begin_park(me);
        c.waiting = me;
        const wake w = park(wait_reason::blocking, &unlock_call, &c.mu, park_mode::unwinds, &c);
        c.mu.lock();
        c.waiting = nullptr;
        if (w == wake::unwind) {
            end = call_end::unwind;
            break;
        }
    }
    if (end != call_end::done) give_up_locked(c);
    c.mu.unlock();
    if (end == call_end::done) san::tsan_acquire(&c);  // fn's outcome (TSan)
    return end;
}

}  // namespace

void blocking_reserve() {
    blocking_pool::instance().reserve();
}

void blocking_submit(blocking_task* t) noexcept {
    blocking_pool::instance().submit(t);
}

// The task is submitted by the unlock callback, after the switch: the pool
// thread cannot ready the goroutine before it is off its stack.
void blocking_park_pinned(blocking_task* t) noexcept {
    san::tsan_release(t);  // the submit runs on the worker's fiber (TSan)
    begin_park(current_parker());
    park(wait_reason::blocking, &submit_after_switch, t, park_mode::pinned, t);
}

void shared_call_base::execute_shared_call(blocking_task* t) noexcept {
    auto* c = static_cast<shared_call_base*>(t);
    // The pool's reference: c may be destroyed when it goes, at the return
    // (released ignored by TSan: its count is goro's; sanitizers/hooks.hpp).
    const san::release_ignored<std::shared_ptr<shared_call_base>> self{std::move(c->keep)};
    {
        lock_scope lk(c->mu);
        if (c->state == call_state::abandoned) return;
        c->state = call_state::running;
    }
    c->produce(c);
    san::tsan_release(c);  // the outcome, to the caller (TSan: sanitizers/hooks.hpp)
    parker* p = nullptr;
    {
        lock_scope lk(c->mu);
        c->state = call_state::done;
        if (c->waiting && claim(c->waiting)) p = c->waiting;
    }
    if (p) ready(p);
}

call_end run_shared_call(const context& ctx, const std::shared_ptr<shared_call_base>& call) {
    after_func_stop stop = context_after_func(
        ctx, [keep = san::release_ignored<std::shared_ptr<shared_call_base>>(call)] {
            interrupt(*keep.p);
        });
    try {
        blocking_reserve();
    } catch (...) {
        stop();
        throw;
    }
    call->keep = call;
    blocking_submit(call.get());
    const call_end end = wait_shared(*call);
    stop();
    return end;
}

}  // namespace goro::detail
