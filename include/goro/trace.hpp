// goro/trace.hpp — the execution tracer: what every worker ran, when, and
// who woke whom, written as a Chrome/Perfetto trace-event JSON file.
//
//   goro::trace::start("run.json");   // from any thread or goroutine
//   goro::run([] { ... });
//   goro::trace::stop();               // writes run.json
//
// Open the file in tools/trace_viewer.html (offline, no network) or at
// ui.perfetto.dev / chrome://tracing. One track per worker; one slice per
// goroutine run ("goroutine N", with its id, creation site and why the run
// ended: a park and its reason, a yield, or the exit); an arrow (flow) from
// the run that readied or spawned a goroutine to the run that followed;
// instant events for steals, parks, poller wake-ups and worker sleeps and
// wake-ups. Goroutines readied from plain threads start their arrows on a
// "plain threads" track.
//
// A trace is independent of runtimes: it may start before run() and stop
// after it. When a runtime ends while tracing, the trace goes on; the next
// runtime's worker i draws on the same track as this one's worker i, and
// stop() writes everything recorded since start().
//
// Cost: while no trace runs, one predictable branch at each hook. While one
// runs, a clock read, a store and an append to the worker's own buffer per
// event (no lock; ~8 events per ping-pong round trip), about 2x on a
// scheduler-bound program; the events are kept in memory until stop():
// 56 bytes each. docs/performance.md has the figures.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <string>

namespace goro::trace {

// Starts recording; the file is created (truncated) now and written by
// stop().
// Throws: goro::misuse_error if a trace is already running;
// std::system_error if `path` cannot be opened for writing.
void start(const std::string& path);

// Stops recording and writes the trace file.
// Throws: goro::misuse_error if no trace is running; std::system_error if
// the file cannot be written (the trace is stopped all the same).
void stop();

// True between start() and stop().
bool running() noexcept;

}  // namespace goro::trace
