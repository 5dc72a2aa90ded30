// goro/detail/timer_node.hpp — the runtime's timer hook, under sleep, timers,
// tickers, after() and context deadlines.
//
// A timer_node is owned by its user (it may live on a goroutine's stack). The
// runtime keeps started nodes in its timer heap; when a node is due, a worker
// thread takes it out of the heap and calls fire(node) outside every lock.
// fire must not block: it readies a parker, try-sends into a buffered
// channel, or spawns a goroutine.
//
// Periodic nodes (period > 0) are put back by the runtime after fire returns,
// at the next multiple of the period after now (late ticks are dropped), or
// at time_point::max() ("never") if that would overflow the clock.
// A node started at time_point::max() never fires (deadline.hpp).
//
// Invariant: once timer_stop returns, fire is not running (unless timer_stop
// was called from that fire itself) and will not run again for that start,
// so the owner may free or restart the node. timer_start on a pending node
// moves it to the new time.
//
// fire must not restart its own node (periodic nodes are put back by the
// runtime). The runtime touches the node for a moment after fire returns,
// so an owner woken by its own node's fire (a sleeper) must call
// timer_settle (or timer_stop) before freeing the node.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "goro/detail/deadline.hpp"  // goro::clock, saturating deadlines

namespace goro::detail {

struct timer_node {
    void (*fire)(timer_node*) = nullptr;
    clock::time_point when{};
    clock::duration period{0};
    // Called (when not null) as the runtime's very last touch of the node:
    // after a fire that did not re-arm it, or at shutdown for a node still
    // pending. Not called after a timer_stop that returned true. Owners that
    // keep the node alive for the heap's sake let go of it here.
    void (*release)(timer_node*) = nullptr;
    // Runtime-owned below (guarded by the runtime's timer lock).
    std::uint32_t heap_slot = static_cast<std::uint32_t>(-1);  // -1: not pending
    std::atomic<bool> firing{false};
    bool cancelled = false;  // stopped while firing: do not re-arm
    // Started while no goro::run was active (by a plain thread, or on a
    // runtime started lazily): it belongs to the process, not to a run, so
    // it outlives the end of a run() that adopted its runtime.
    bool outlives_run = false;
    // Asked (when not null) at the end of the run() during which the node
    // was started, if it is still pending then: true carries it past the
    // run, as if it had been started outside one. Called with no goroutine
    // left and the runtime's locks free; it must not start or stop timers.
    bool (*outlives_run_if)(timer_node*) = nullptr;
};

// Starts (or moves) the node. Starts the runtime lazily if needed.
void timer_start(timer_node* t, clock::time_point when);
// Stops it: true if it was pending (fire will not run for that start), false
// if it already fired or was not started. On return fire is not running.
bool timer_stop(timer_node* t) noexcept;
// Waits until a fire of t in progress has finished with the node.
void timer_settle(timer_node* t) noexcept;

}  // namespace goro::detail
