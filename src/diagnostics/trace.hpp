// diagnostics/trace.hpp — the execution tracer's recording side
// (goro::trace::start/stop; trace_json.cpp writes what was recorded).
//
// Hot path: each hook in the scheduler is
//     if (tracing()) [[unlikely]] trace_xxx(...);
// one relaxed load of a global flag and a branch that is never taken while
// no trace runs; the trace_xxx functions are out of line (trace.cpp).
//
// Recording: events go to lanes. A worker appends to its own lane (by worker
// index: worker i of every runtime in a trace writes lane i, one after the
// other, since runtimes never overlap); plain threads (a ready() from
// outside, the monitor's poll) share one lane under a mutex. A worker takes
// no lock: it raises its lane's `busy` flag, checks that the session is still
// on, appends, and lowers the flag. stop() turns the session off and then
// waits for every raised flag before it reads the lanes:
//   writer:  busy := 1 (seq_cst)        stop():  on := 0 (seq_cst)
//            if on (seq_cst): append             wait while busy (seq_cst)
//            busy := 0 (release)                 read the lanes
// Either the writer sees on = 0 (and appends nothing) or stop() sees its
// flag up and waits: an append never overlaps stop()'s read.
//
// Invariants: a lane's events are touched only by its writer while the
// session is on, and only by start()/stop() (under the control mutex) while
// it is off. Lanes are never freed, and stop() empties their buffers
// without freeing them: the next trace appends into memory already touched
// (first-touch page faults were most of the cost of a first trace here).
//
// Lock order: the control mutex -> the plain lane's mutex; both are leaves
// with respect to the runtime (no runtime lock is taken under them).
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

struct worker;
struct goroutine;
enum class wake_reason : std::uint32_t;

// Hidden: the library is built position-independent, and a default-
// visibility global would be read through the GOT (one more load per hook).
[[gnu::visibility("hidden")]] extern std::atomic<bool> trace_on;
inline bool tracing() noexcept {
    return trace_on.load(std::memory_order_relaxed);
}

// A goroutine run on w starts / has just switched back (g->action and
// g->reason say why).
void trace_run_begin(worker* w, goroutine* g) noexcept;
void trace_run_end(worker* w, goroutine* g) noexcept;
// g was made runnable by the calling thread (spawned or woken): the start
// of a flow that ends where g next runs.
void trace_readied(goroutine* g, bool spawned) noexcept;
void trace_steal(worker* thief, worker* victim, goroutine* g) noexcept;
void trace_worker_sleep(worker* w, bool watcher) noexcept;
void trace_worker_wake(worker* w, wake_reason why) noexcept;
void trace_poller_wake(int readied) noexcept;

// What was recorded, for trace_json.cpp.
enum class trace_kind : std::uint8_t {
    run,         // a complete slice: ts, dur, gid, stop (see below), site
    flow_start,  // ts, flow id, gid readied, arg = 1 for a spawn
    flow_end,    // ts, flow id, gid
    steal,       // ts, gid, arg = victim's index
    park,        // ts, gid, stop
    sleep,       // ts, arg = 1 if the timer watcher
    wake,        // ts, arg = wake_reason
    poll,        // ts, arg = goroutines readied
};

// Why a run ended: switch_action, and for a park its wait_reason.
struct trace_stop {
    std::uint8_t action = 0;
    std::uint8_t reason = 0;
};

struct trace_event {
    std::int64_t ts = 0;   // ns since the trace started
    std::int64_t dur = 0;  // ns (runs)
    std::uint64_t gid = 0;
    std::uint64_t arg = 0;  // flow id, victim, count, ...
    const char* file = nullptr;
    const char* func = nullptr;
    std::uint32_t line = 0;
    trace_kind kind = trace_kind::run;
    trace_stop stop;
};

}  // namespace goro::detail

#include <cstdio>
#include <string>
#include <vector>

namespace goro::detail {

// One track of a finished trace.
struct trace_lane_events {
    unsigned tid = 0;  // the worker's index, or plain_tid
    const std::vector<trace_event>* events = nullptr;
};
inline constexpr unsigned trace_plain_tid = 9999;

struct trace_data {
    std::vector<trace_lane_events> lanes;
    std::uint64_t dropped = 0;  // events not kept: a lane's buffer was full
};

// Writes d as trace-event JSON (trace_json.cpp). False on a write error.
bool write_trace_json(std::FILE* f, const trace_data& d);

}  // namespace goro::detail
