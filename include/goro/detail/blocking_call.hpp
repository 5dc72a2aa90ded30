// goro/detail/blocking_call.hpp — the records goro::blocking builds, and
// what its templates need from the blocking pool (src/offload/).
//
// A call is a blocking_task: the pool queues it and runs `execute` on one of
// its threads; after execute returns, the pool touches nothing of the task.
// Two kinds:
//
//  - frame_call (blocking(fn)): lives in the caller's frame and refers to
//    the caller's fn. The caller parks pinned (park.hpp): nothing but the
//    pool thread can end that park, not even shutdown, so the frame is alive
//    while fn runs. execute: run fn, store its outcome in the record, claim
//    and ready the caller — the last touch.
//
//  - shared_call (blocking(ctx, fn)): on the heap, shared by the caller, the
//    pool (the `keep` self-reference, dropped at the end of execute) and the
//    context's after-func. fn is a decayed copy: the caller may leave before
//    fn returns. Its lock orders three parties:
//        caller                       pool thread              ctx after-func
//        lock                         lock                     lock
//        done? take it                abandoned? drop, return  cancelled := true
//        cancelled? give up           state := running         waiting && claim?
//        begin_park; waiting := me    unlock; run fn; lock       ready it (unlocked)
//        park (unlock after switch)   state := done
//        lock; waiting := null        waiting && claim?
//                                       ready it (unlocked)
//    A party claims `waiting` only under the lock while it is set, and the
//    caller clears it under the lock before it leaves, so a claim always
//    belongs to the episode the caller opened. A caller that gives up while
//    its call is still queued marks it abandoned: fn is then never run.
//
// Invariants: a task is submitted at most once and executed at most once;
// every reservation (blocking_reserve) that returns is followed by exactly
// one submit; a call's outcome is written only by the pool thread, before it
// publishes `done` (shared_call) or claims the caller (frame_call).
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/lock_rank.hpp"
#include "goro/detail/park.hpp"
#include "goro/detail/spin_mutex.hpp"

namespace goro {
class context;
}

namespace goro::detail {

struct blocking_task {
    // Runs the call on a pool thread and wakes its caller.
    void (*execute)(blocking_task*) noexcept = nullptr;
    blocking_task* next = nullptr;  // the pool's queue
};

// The blocking pool (src/offload/blocking_pool.cpp).
// Reserves a pool thread for one call, starting one if none is free and
// the bound allows. Throws std::system_error if the pool has no thread and
// none can be started (the call then never runs).
void blocking_reserve();
// Queues a reserved call.
void blocking_submit(blocking_task* t) noexcept;
// Parks the calling goroutine, pinned, with wait reason "blocking call", and
// submits t (reserved) once the goroutine is off its stack; returns after
// t's execute has readied it.
void blocking_park_pinned(blocking_task* t) noexcept;

// What fn returned (or threw), constructed in place on the pool thread: a
// prvalue result is not moved there (guaranteed elision); a reference
// result is copied (blocking returns by value). A throw from fn or from that
// copy is kept and rethrown by take().
template <class R>
class call_outcome {
  public:
    call_outcome() noexcept {}
    call_outcome(const call_outcome&) = delete;
    call_outcome& operator=(const call_outcome&) = delete;
    ~call_outcome() {
        if (has_value_) ptr()->~R();
    }
    template <class F>
    void produce(F&& fn) noexcept {
        try {
            ::new (static_cast<void*>(buf_)) R(std::invoke(std::forward<F>(fn)));
            has_value_ = true;
        } catch (...) {
            error_ = std::current_exception();
        }
    }
    // Rethrows fn's exception, or moves the result out (once).
    R take() {
        if (error_) std::rethrow_exception(error_);
        return std::move(*ptr());
    }

  private:
    R* ptr() noexcept { return std::launder(reinterpret_cast<R*>(buf_)); }
    alignas(R) unsigned char buf_[sizeof(R)];
    bool has_value_ = false;
    std::exception_ptr error_;
};

template <>
class call_outcome<void> {
  public:
    template <class F>
    void produce(F&& fn) noexcept {
        try {
            std::invoke(std::forward<F>(fn));
        } catch (...) {
            error_ = std::current_exception();
        }
    }
    void take() {
        if (error_) std::rethrow_exception(error_);
    }

  private:
    std::exception_ptr error_;
};

// blocking(fn)'s record, in the caller's frame. F is what blocking deduced
// (an lvalue reference, or the type of an rvalue), invoked as it was passed.
template <class F, class R>
struct frame_call : blocking_task {
    explicit frame_call(std::remove_reference_t<F>& f) noexcept : fn(f) { execute = &run; }
    std::remove_reference_t<F>& fn;
    parker* caller = current_parker();
    call_outcome<R> out;

    static void run(blocking_task* t) noexcept {
        auto* self = static_cast<frame_call*>(t);
        self->out.produce(std::forward<F>(self->fn));
        parker* p = self->caller;
        // Pinned: nobody else can claim this episode, so the claim succeeds.
        if (claim(p)) ready(p);  // last touch of the record
    }
};

// blocking(ctx, fn)'s shared state: the protocol is in the header comment.
enum class call_state : unsigned char { queued, running, done, abandoned };
enum class call_end : unsigned char { done, cancelled, unwind };

struct shared_call_base : blocking_task {
    spin_mutex mu{lock_rank::blocking_call};
    parker* waiting GORO_GUARDED_BY(mu) = nullptr;
    call_state state GORO_GUARDED_BY(mu) = call_state::queued;
    bool cancelled GORO_GUARDED_BY(mu) = false;
    // The pool's reference, set before submit and dropped by execute.
    std::shared_ptr<shared_call_base> keep;
    void (*produce)(shared_call_base*) noexcept = nullptr;

    shared_call_base() noexcept { execute = &execute_shared_call; }
    // The pool thread's side of the protocol.
    static void execute_shared_call(blocking_task* t) noexcept;
};

// Runs a shared call to its end for the calling goroutine: registers the
// after-func on ctx, reserves and submits, waits for fn or for ctx, and
// unregisters. Throws what blocking_reserve or the after-func's
// registration throws, before anything was submitted.
call_end run_shared_call(const context& ctx, const std::shared_ptr<shared_call_base>& call);

template <class D, class R>
struct shared_call final : shared_call_base {
    template <class F>
    explicit shared_call(F&& f) : fn(std::forward<F>(f)) {
        produce = &run;
    }
    D fn;
    call_outcome<R> out;

    static void run(shared_call_base* b) noexcept {
        auto* self = static_cast<shared_call*>(b);
        self->out.produce(std::move(self->fn));
    }
};

}  // namespace goro::detail
