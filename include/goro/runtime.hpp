// goro/runtime.hpp — goroutines and the scheduler that runs them.
//
//   int main() {
//       return goro::run([] {
//           goro::wait_group wg;
//           for (int i = 0; i < 10; ++i) wg.go([i] { work(i); });
//           wg.wait();
//       });
//   }
//
// Goroutines are fibers on virtual-memory stacks — a reservation (1 MiB by
// default) whose pages are committed on demand, as the goroutine first
// touches them, up to the reservation — multiplexed by an M:N
// work-stealing scheduler onto `procs` worker threads. Blocking goro
// calls park the goroutine and free its worker; they also work from plain OS
// threads, where they block the thread.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <type_traits>
#include <utility>
#include "goro/detail/require_callable.hpp"
#include "goro/source_location.hpp"

#include "goro/detail/spawn.hpp"
#include "goro/detail/timer_node.hpp"

namespace goro {

// Settings of a runtime, for run(opts, fn).
struct options {
    // Worker threads (GOMAXPROCS). 0: the GORO_MAXPROCS environment variable,
    // else std::thread::hardware_concurrency(). goro::set_procs changes it
    // at run time, up to the larger of this and the hardware threads.
    unsigned procs = 0;
    // Virtual reservation per goroutine stack; pages are committed on first
    // touch. 0: the GORO_STACK_SIZE environment variable (bytes), else 1 MiB.
    // (A goroutine may ask for another size: goro::spawn_options.)
    std::size_t stack_size = 0;
    // Virtual reservation of run()'s main goroutine's stack (committed on
    // demand like the others). 0: 8 MiB — a thread's default — or
    // stack_size if larger. Else 64 KiB..1 GiB (goro::misuse_error).
    std::size_t main_stack_size = 0;
    // SIGQUIT prints goro::dump_goroutines to stderr and the program goes on
    // (Go's SIGQUIT prints the stacks and exits). Installs a SIGQUIT handler
    // for the rest of the process.
    bool dump_on_sigquit = false;
    // Go's "all goroutines are asleep - deadlock!": when every goroutine is
    // parked and nothing but a goroutine could wake one — no timer pending,
    // no descriptor waited on, no blocking call in flight, no plain thread
    // inside or parked in a goro call — run() unwinds the goroutines and
    // throws goro::deadlock_error (what(): that line and the goroutine
    // dump). Opt-in: a plain thread that is outside goro now but will send
    // or unlock later cannot be seen, so a program whose plain threads feed
    // its goroutines must leave it off. Checked every 2 ms by the monitor.
    // (Inside goro::testing::bubble detection is always on and exact.)
    bool detect_deadlock = false;
    // At most this many goro::blocking calls run at once (threads of the
    // blocking pool, goro/blocking.hpp). 0: the GORO_BLOCKING_THREADS
    // environment variable, else 64. At most 10000.
    unsigned blocking_threads = 0;
};

namespace detail {
int run_main(const options& opts, void (*entry)(void*), void* fn, int* result);
template <class F>
void run_entry(void* p) {
    auto& pair = *static_cast<std::pair<F*, int*>*>(p);
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_integral_v<R> && !std::is_same_v<R, bool>) {
        *pair.second = static_cast<int>((*pair.first)());
    } else {
        (*pair.first)();
    }
}
}  // namespace detail

// Runs fn as the main goroutine and blocks the calling thread until it returns.
// Returns fn's result when it returns int, else 0. Goroutines still parked when
// fn returns are unwound (their destructors run) before run returns. May be
// called again afterwards. Requires: not called from inside a goroutine, and
// no other run() active (both throw goro::misuse_error).
// An exception escaping fn propagates out of run() after the unwinding.
template <class F>
int run(options opts, F&& fn) {
    int result = 0;
    std::pair<std::remove_reference_t<F>*, int*> p{&fn, &result};
    detail::run_main(opts, &detail::run_entry<std::remove_reference_t<F>>, &p, &result);
    return result;
}
template <class F>
int run(F&& fn) {
    return run(options{}, std::forward<F>(fn));
}

// `go f(args...)`: starts a goroutine. The callable and its arguments are
// decay-copied (or moved) first. Starts the process-wide runtime lazily when
// called outside run(). An exception escaping the goroutine ends the process
// with a message naming the goroutine, where it was started, and what().
template <class F>
void go(F&& fn, goro::source_location where = goro::source_location::current()) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>,
                  "goro::go(fn): fn must be callable with no arguments (pass its arguments after "
                  "it: goro::go(fn, args...))");
    detail::require_callable(fn, "goro::go");
    detail::spawn(std::forward<F>(fn), where);
}
template <class F, detail::not_location A1>
void go(F&& fn, A1&& a1, goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn(detail::bind_go(std::forward<F>(fn), std::forward<A1>(a1)), where);
}
template <class F, detail::not_location A1, detail::not_location A2>
void go(F&& fn, A1&& a1, A2&& a2, goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn(detail::bind_go(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2)),
                  where);
}
template <class F, detail::not_location A1, detail::not_location A2, detail::not_location A3>
void go(F&& fn, A1&& a1, A2&& a2, A3&& a3,
        goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn(detail::bind_go(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2),
                                  std::forward<A3>(a3)),
                  where);
}
template <class F, detail::not_location A1, detail::not_location A2, detail::not_location A3,
          detail::not_location A4>
void go(F&& fn, A1&& a1, A2&& a2, A3&& a3, A4&& a4,
        goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn(detail::bind_go(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2),
                                  std::forward<A3>(a3), std::forward<A4>(a4)),
                  where);
}
template <class F, detail::not_location A1, detail::not_location A2, detail::not_location A3,
          detail::not_location A4, detail::not_location A5>
void go(F&& fn, A1&& a1, A2&& a2, A3&& a3, A4&& a4, A5&& a5,
        goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn(detail::bind_go(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2),
                                  std::forward<A3>(a3), std::forward<A4>(a4), std::forward<A5>(a5)),
                  where);
}

// More than five arguments: a readable error instead of a list of candidates.
template <class F, detail::not_location... A>
requires(sizeof...(A) > 5) void go(F&&, A&&...) {
    static_assert(sizeof...(A) <= 5,
                  "goro::go(fn, args...) takes at most 5 arguments after fn; capture the rest "
                  "in a lambda: goro::go([=] { fn(a1, a2, a3, a4, a5, a6); })");
}

// How to start one goroutine: goro::go(goro::spawn_options{...}, fn).
struct spawn_options {
    // Virtual reservation for this goroutine's stack, in bytes (rounded up
    // to pages; 64 KiB..1 GiB, else goro::misuse_error naming the call).
    // Committed on demand like every stack, and guarded like every stack
    // (an overflow is reported, never silent). 0: the runtime's size
    // (options::stack_size). A size other than the runtime's costs a
    // mapping of its own (kept for reuse by the next goroutine of that
    // size): meant for the few goroutines that need a deep stack, not for
    // a million small ones.
    std::size_t stack_size = 0;
};

// `go f()` with spawn options, e.g. a deep recursion on a 64 MiB stack:
//   goro::go(goro::spawn_options{.stack_size = 64 << 20}, [] { parse(doc); });
template <class F>
void go(spawn_options opts, F&& fn,
        goro::source_location where = goro::source_location::current()) {
    detail::require_callable(fn, "goro::go");
    detail::spawn_sized(std::forward<F>(fn), where, opts.stack_size, "goro::go");
}

// runtime.Goexit: ends the calling goroutine. Its stack unwinds as at
// shutdown — every destructor runs (a wait_group::go's done() included, so
// exit() counts as returning), a `catch (...)` that does not rethrow would
// stop it (see docs/pitfalls.md) — and the goroutine ends with no error
// (not a panic; an errgroup task that exits is no failure).
// Called by run()'s main goroutine: the other goroutines go on, and run()
// returns 0 once none is left (Go's program would then crash with a
// deadlock; with options::detect_deadlock, run() throws
// goro::deadlock_error if the others are stuck for good; without, it waits).
// Requires: called from a goroutine (else goro::misuse_error naming
// goro::exit), and not from a destructor while an exception is in flight
// (that misuse_error would terminate, as any throw there does).
[[noreturn]] void exit();

// runtime.LockOSThread / UnlockOSThread: while locked, the calling
// goroutine runs only on the worker thread it runs on now — wherever it is
// readied from, it resumes there, and no other worker steals it — so
// thread-affine state (a thread_local, a per-thread library context, the
// thread id) stays its own across parks. Calls nest: the goroutine is
// unlocked when it has called unlock_os_thread as often as
// lock_os_thread; an unlock with nothing locked does nothing, as in Go.
// A goroutine that exits while locked is simply unlocked.
// Differs from Go: the thread is not exclusive — while the locked
// goroutine is parked, its worker runs other goroutines (Go would give
// the thread to it alone), and a locked goroutine that is runnable waits
// for its worker even if others are idle. On a plain thread both calls do
// nothing (a thread stays on itself).
void lock_os_thread();
void unlock_os_thread() noexcept;

// runtime.Gosched: lets other goroutines run. On a plain thread, std::this_thread::yield.
void yield();

// time.Sleep: parks the goroutine (or blocks the plain thread).
void sleep_until(clock::time_point tp);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
    if (d <= d.zero()) return yield();
    sleep_until(detail::saturating_deadline(d));
}

// runtime.NumGoroutine: goroutines that exist now (running, runnable or parked).
std::size_t num_goroutines() noexcept;
// GOMAXPROCS in force (of the running runtime, else what the next one would use).
unsigned maxprocs() noexcept;
// runtime.GOMAXPROCS(0): the worker count in force, the same as maxprocs().
unsigned get_procs() noexcept;
// runtime.GOMAXPROCS(n): from now on n workers run goroutines; returns the
// previous count. n < 1 changes nothing (only returns the count, as in Go).
// Safe from any goroutine or plain thread, concurrently, while goroutines
// run. Applies to the running runtime; if none runs, starts the
// process-wide one with n workers (as go() starts one lazily; a goro::run
// adopts it unless its options::procs differs). A later runtime starts with
// its own options again.
//   Raising wakes workers retired before, or starts new ones. The ceiling is
// the runtime's worker slots, fixed when it starts: the larger of its
// starting count (options::procs, GORO_MAXPROCS) and the hardware threads.
// Above that (or above 4096) goro::misuse_error naming goro::set_procs:
// unlike Go, a running runtime cannot grow past its slots.
//   Lowering retires the surplus workers (the highest-numbered ones), each
// at its next look for work — a worker running a goroutine when the count
// drops retires when that goroutine next parks, yields or exits (a caller
// on such a worker yields before returning). A retiring worker hands its
// queued goroutines to the others and sleeps, except that it still runs
// the goroutines locked to it by lock_os_thread (they can run nowhere
// else): those run beside the n workers, the one exception to "at most n
// goroutines run at once". Retired workers count as idle for deadlock
// detection and cost no CPU.
//   Inside goro::testing::bubble (one worker by design) only n == 1 is
// accepted; other values throw goro::misuse_error.
unsigned set_procs(int n);
// True when called from a goroutine.
bool in_goroutine() noexcept;

namespace this_goroutine {
// The running goroutine's id (1, 2, ...), 0 outside a goroutine.
std::uint64_t id() noexcept;
}  // namespace this_goroutine

// runtime.Stack(buf, false): the calling goroutine's stack trace, as text:
//
//   goroutine 7 [running]:
//   handle(request const&)
//           /usr/local/bin/server +0x1b3c4
//   ...
//   created at server.cpp:42 in void serve()
//
// One entry per frame, innermost first: the function (demangled; "??"
// where the dynamic symbol table does not have it — link the executable
// with -rdynamic, CMake's ENABLE_EXPORTS, to see its own functions), then
// the module and the offset in it (`addr2line -Cfe module offset` gives
// the file and line). At most 128 frames. From a plain thread, that
// thread's trace under "plain thread [running] (not a goroutine):".
// Uses glibc's backtrace() and dladdr(): no extra library.
std::string stack();

// Lists every goroutine: id, state, wait reason, what it waits on (a
// channel, mutex or wait_group by address, a sleep's deadline), how long it
// has waited (to a few ms), and its creation site. Goroutines in the same
// state, waiting on the same object, created at the same site are grouped
// with a count (as pprof's goroutine?debug=1). Takes a snapshot first and
// writes after, holding no lock that workers need while it writes; a
// goroutine that starts or stops meanwhile may be missed.
void dump_goroutines(std::ostream& os);

}  // namespace goro
