// time/outlives_run.hpp — a timer started during a run() that may outlive it.
//
// Timers started during a run() end with it (runtime/lifecycle.cpp), unless
// their owner says, when the run ends, that it still wants the timer: a
// context's deadline timer does while somebody still holds the context, so
// that the context is cancelled at its deadline after the run too.
#pragma once

#include <functional>

#include "goro/time.hpp"

namespace goro::detail {

// make_timer, and the end of a run() that finds the timer pending asks
// `wanted` (with no goroutine left and no runtime lock held) and carries the
// timer past the run if it returns true. `wanted` must not start or stop
// timers.
timer_parts make_timer_outliving_run_if(clock::duration d, clock::duration period,
                                        std::function<void()> fn, const source_location& where,
                                        std::function<bool()> wanted);

}  // namespace goro::detail
