// goro/testing.hpp — help for testing code that uses goro (Go's goleak).
//
//   TEST(Server, StopsCleanly) {
//       auto baseline = goro::testing::live_goroutines();
//       start_server(); stop_server();
//       goro::testing::expect_no_leaks(baseline);  // throws goro::testing::leak_error
//   }
//
// With GoogleTest, one line in main checks every test (goro/testing/gtest.hpp):
//   goro::testing::install_leak_check();
//
// A leak is a goroutine alive when the check runs that was not alive at the
// baseline and is not the caller (nor one that a shutdown abandoned, stuck
// in a destructor: the shutdown reported it on stderr). Goroutines that are finishing get a grace
// period: the check waits (up to `grace`, retrying) for them to exit before
// it reports. Inside goro::run the check works as anywhere else; after run()
// returns nothing of it is left (run unwinds every goroutine), so a leak
// check matters most for goroutines started from plain threads (the lazy
// runtime) and inside long-lived runs.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "goro/runtime.hpp"

namespace goro::testing {

// Identities of the goroutines alive now (excluding the caller).
struct goroutine_id {
    // Its goro::this_goroutine::id().
    std::uint64_t id;
    const void* record;  // ids restart with each run(); the pair is unique
    friend bool operator==(const goroutine_id&, const goroutine_id&) = default;
};
// The goroutines alive now (excluding the caller).
std::vector<goroutine_id> live_goroutines();

// The goroutines leaked since `baseline` (empty: all but the caller), after
// waiting up to `grace` for them to finish, described as
// goro::dump_goroutines does (state, what each waits on, creation site);
// "" if there are none.
std::string find_leaks(const std::vector<goroutine_id>& baseline = {},
                       std::chrono::milliseconds grace = std::chrono::seconds(1));

// Thrown by expect_no_leaks; what() lists the leaked goroutines.
class leak_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Throws leak_error if find_leaks(baseline, grace) finds any.
void expect_no_leaks(const std::vector<goroutine_id>& baseline = {},
                     std::chrono::milliseconds grace = std::chrono::seconds(1));

// ---- Deterministic tests (Go 1.25's testing/synctest) -----------------------
//
//   goro::testing::bubble([] {
//       auto [ctx, cancel] = goro::with_timeout(goro::background(), 10min);
//       goro::sleep_for(9min);
//       assert(!ctx.err());
//       goro::sleep_for(2min);               // returns at once, in real time
//       assert(ctx.err() == goro::errc::deadline_exceeded);
//   });
//
// bubble(fn) runs fn as the main goroutine of a runtime of its own: one
// worker, and a virtual clock that starts at the real now and stands still
// while any goroutine of the bubble can run; when every goroutine is
// durably blocked, it jumps to the next timer's deadline (a sleep, a timer
// or ticker, after(), a context deadline). I/O deadlines are measured on
// the virtual clock too, but the clock never jumps to one: a goroutine
// waiting on a descriptor is not durably blocked (see below), so while it
// waits the clock stands still — its deadline is not reached, and no timer
// of the bubble fires — until readiness (or another goroutine cancelling
// its context) ends the wait. goro::now() reads it
// (goro::clock::now() stays the real steady clock: compare deadlines with
// goro::now() in bubble tests). Run order is deterministic, and select's
// random choices come from `seed`: the same seed, the same run.
//
// When every goroutine is blocked and no timer is pending, the bubble is
// deadlocked: bubble unwinds its goroutines and throws goro::deadlock_error
// ("goro: all goroutines are asleep - deadlock!" and the dump). Never while
// a timer is pending. A goroutine waiting on a descriptor, on a blocking
// call, or on a plain thread inside a goro call is not durably blocked:
// while one does, the clock does not move at all (real time passes, virtual
// time does not), and nothing is declared a deadlock. Goroutines of a bubble must not wait on
// plain threads that are outside goro (they cannot be seen; it would be
// reported as a deadlock) — nor, strictly, on one that goes from one goro
// call to the next (a ping-pong with a plain thread): in between it is
// outside goro. A deadlock is declared at the second check in a row, 2 ms
// apart, that found nothing run between and no wake in flight, so only a
// plain thread held up there for longer can be taken for one.
//
// Must be called from a plain thread (not inside goro::run or a goroutine);
// a runtime started lazily before is shut down first. Timers started in
// the bubble end with it. Once fn returns the clock stands still: the
// goroutines left are unwound, not woken (goro::exit in fn instead waits
// for them, as in run(), and the clock moves on for them). In the unwinding
// it moves only for a goroutine that waits through it (a destructor that
// sleeps), firing the timers due on the way (docs/debugging.md). Returns
// fn's int result, as run() does; rethrows an exception escaping fn.
struct bubble_options {
    // Seeds select's random choices: the same seed, the same run.
    std::uint64_t seed = 1;
    std::size_t stack_size = 0;  // as goro::options::stack_size
};

}  // namespace goro::testing

namespace goro::detail {
int run_bubble(const testing::bubble_options& opts, void (*entry)(void*), void* fn);
}  // namespace goro::detail

namespace goro::testing {

template <class F>
// Runs fn in a bubble (see above).
int bubble(F&& fn, const bubble_options& opts = {}) {
    int result = 0;
    std::pair<std::remove_reference_t<F>*, int*> p{&fn, &result};
    goro::detail::run_bubble(opts, &goro::detail::run_entry<std::remove_reference_t<F>>, &p);
    return result;
}

// Returns when every other goroutine of the bubble is durably blocked (Go's
// synctest.Wait); the virtual clock does not move meanwhile. Throws
// misuse_error outside a bubble's goroutine.
void wait();

}  // namespace goro::testing
