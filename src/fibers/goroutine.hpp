// fibers/goroutine.hpp — the goroutine record (Go's G).
//
// The record sits at the very top of the goroutine's own stack slot, with the
// closure just below it; the usable stack starts under the closure. So a
// goroutine is one stack slot and nothing else.
//
// Ownership of the fields:
//  - ctx, unlock, unlock_arg, action, park_bit: the worker
//    running or switching the G.
//  - state, reason: written by the G's worker, read racily by diagnostics.
//  - next: the run queue that holds the G (only one at a time).
//  - parker::word: the park protocol (see goro/detail/park.hpp).
//  - trace_flow: written by its readier before the G is queued (ready()),
//    read and cleared by the worker that runs it next (trace.hpp).
//  - unwind_requested: written by whoever claimed the G's park episode for
//    shutdown, before ready(); read and cleared by the G when park returns.
//  - pinned_to, lock_count: written by the G itself while it runs
//    (goro::lock_os_thread), cleared when it exits; pinned_to is read by
//    whoever readies it, after it parked (the park protocol orders the
//    read after the write), and by its worker when it yields.
//
// The record is built once per stack slot (stack_slot::has_record) and reset
// field by field for each new goroutine, so its park word is never rebuilt by
// a plain write while shutdown or diagnostics read it, and its episode number
// keeps counting up across the goroutines that use the slot.
#pragma once

#include <atomic>
#include <cstdint>
#include "goro/source_location.hpp"

#include "diagnostics/assert.hpp"
#include "fibers/context_switch.hpp"
#include "goro/detail/park.hpp"
#include "stacks/stack_pool.hpp"

namespace goro::detail {

enum class g_state : std::uint8_t { free = 0, runnable, running, waiting, dead };

const char* to_string(g_state s) noexcept;

// What a goroutine asks of its worker when it switches away.
// yield_to_global: spawn_yield_point's yield, to the global queue's tail
// (behind the goroutines its worker spilled there), as Go queues a
// preempted goroutine globally.
enum class switch_action : std::uint8_t { park, yield, exit, yield_to_global };

struct worker;

struct goroutine : parker {
    fiber_context ctx;
    goroutine* next = nullptr;
    std::uint64_t id = 0;
    std::atomic<g_state> state{g_state::free};
    std::atomic<wait_reason> reason{wait_reason::none};  // relaxed: read racily by diagnostics
    bool unwind_requested = false;
    // Times the shutdown unwind was thrown through this goroutine (written
    // by it; relaxed, read by the shutdown's spinner watch): more than one
    // means it swallowed one (catch (...)).
    std::atomic<std::uint32_t> unwinds_thrown{0};
    std::uint8_t park_bit = 0;  // the park_bits value finish_park sets for this park
    // How many goroutines deep in a chain where each was started while the
    // one before was being unwound by the shutdown (a destructor that
    // restarts its goroutine): the spawner's, plus one if it was unwinding.
    // 0 outside shutdown. Written at spawn (park.cpp, throw_unwind).
    std::uint32_t shutdown_generation = 0;
    // Given up by shutdown (a hopeless wait in a destructor): its stack is
    // leaked and the slot never reused. Diagnostics only.
    std::atomic<bool> abandoned{false};
    // What the current park waits on (park()'s `object`); relaxed: read by
    // diagnostics and shutdown while parked.
    std::atomic<const void*> waiting_on{nullptr};
    // When the current park began (the monitor's coarse clock, ns), and for a
    // sleep its deadline; relaxed, for diagnostics.
    std::atomic<std::int64_t> parked_since{0};
    std::atomic<std::int64_t> sleep_until_ns{0};
    switch_action action = switch_action::exit;
    std::uint32_t lock_count = 0;  // goro::lock_os_thread nesting
    worker* pinned_to = nullptr;   // while lock_count > 0: runs only on this worker
    // The worker whose spawn stack the monitor took it from (not yet run,
    // written before it is queued), counted in that worker's rescued_alive
    // until it exits; null otherwise (scheduler/monitor.cpp).
    worker* rescued_from = nullptr;
    void (*unlock)(void*) = nullptr;
    void* unlock_arg = nullptr;
    void (*entry)(void*) = nullptr;
    void* closure = nullptr;
    stack_slot* slot = nullptr;
    std::uintptr_t low_water = 0;  // lowest stack pointer seen at a switch
    std::uintptr_t stack_lo = 0;   // copies of slot->lo / guarded, kept hot here
    bool guarded = false;
    goro::source_location where;
    std::uint64_t trace_flow = 0;  // the flow of its last ready, while tracing
};

// Goroutine state transitions, each through this one setter, which checks
// the from-state in builds with GORO_ASSERTS:
//   free -> runnable (spawn)        runnable -> running (a worker runs it)
//   running -> waiting (park)       running -> runnable (yield)
//   waiting -> runnable (ready)     running -> dead (exit)   dead -> free
// `from` is a mask of g_state bits.
constexpr unsigned state_bit(g_state s) noexcept {
    return 1u << static_cast<unsigned>(s);
}
inline void set_state(goroutine* g, unsigned from, g_state to) noexcept {
// Release: a reader that sees the new state (diagnostics) sees the record
// as the transition left it (a spawn's id and creation site, say).
#if defined(GORO_ASSERTS)
    g_state old = g->state.exchange(to, std::memory_order_acq_rel);
    GORO_ASSERT(from & state_bit(old), "goroutine state transition from an unexpected state");
#else
    (void)from;
    g->state.store(to, std::memory_order_release);
#endif
}

// The record of the slot's goroutine (whether or not one is live there).
inline goroutine* record_of(stack_slot* s) noexcept {
    constexpr std::uintptr_t align = 64;
    std::uintptr_t p = (s->hi - sizeof(goroutine)) & ~(align - 1);
    return reinterpret_cast<goroutine*>(p);
}

// Calls f(g) for the record of every slot a goroutine was ever spawned on
// (live or not: f looks at its state), under the stack pool's lock.
template <class F>
void for_each_goroutine_record(F&& f) {
    stack_pool::instance().for_each_slot([&](stack_slot& slot) {
        if (slot.has_record.load(std::memory_order_acquire)) f(record_of(&slot));
    });
}

}  // namespace goro::detail
