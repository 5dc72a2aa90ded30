// Bugs the soak program (tests/soak/soak.cpp, docs/testing.md) found in goro,
// each as the smallest reproducer we could make. They are DISABLED_ so that
// the suite stays green until goro is fixed; run them with
//   build/release/tests/goro_tests --gtest_also_run_disabled_tests
//       --gtest_filter='SoakFound.*'
// Each asserts what goro's headers promise (or Go does); today each fails.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

// Bug 1: a destructor that blocks while run() shuts down, entered by a
// normal scope exit (not by unwinding), ends the process. wait_group::wait
// waits until the count is zero and then throws goroutine_unwind (it only
// checks std::uncaught_exceptions() == 0, which is also true in a destructor
// entered normally), out of the noexcept destructor: std::terminate
// ("terminate called after throwing an instance of
// 'goro::detail::goroutine_unwind'"). Shutdown of an RAII joiner (the
// wait_group idiom of goro/wait_group.hpp, put in a destructor) is a matter
// of timing: whenever run() returns while a goroutine is in ~joiner.
TEST(SoakFound, JoinerDestructorAtANormalScopeExitDuringShutdown) {
    std::atomic<int> joined{0};
    goro::run(procs(2), [&] {
        goro::go([&] {
            struct joiner {
                goro::wait_group wg;
                std::atomic<int>& joined;
                ~joiner() {
                    wg.wait();
                    joined.fetch_add(1);
                }
            } j{{}, joined};
            j.wg.go([] { goro::select(); });  // blocks until shutdown unwinds it
        });                                   // a normal scope exit: ~joiner waits in wg.wait()
        goro::sleep_for(5ms);                 // run() shuts down while ~joiner waits
    });
    EXPECT_EQ(joined.load(), 1);
    EXPECT_EQ(goro::num_goroutines(), 0u);
}

// Bug 1, with a mutex: a destructor entered normally locks a goro::mutex
// held by a goroutine that shutdown unwinds. The lock's park is unwound at
// once (no exception in flight, so it is not exempt): goroutine_unwind out
// of the destructor, std::terminate. The same destructor entered by
// unwinding waits and completes (ShutdownProtocol.ContendedMutexInADestructor
// AtShutdown).
TEST(SoakFound, MutexLockInADestructorAtANormalScopeExitDuringShutdown) {
    goro::mutex m;
    std::atomic<int> locked{0};
    goro::run(procs(2), [&] {
        goro::go([&] {
            std::lock_guard lk(m);
            goro::select();  // holds m until unwound
        });
        goro::sleep_for(2ms);
        goro::go([&] {
            struct locker {
                goro::mutex& m;
                std::atomic<int>& n;
                ~locker() {
                    std::lock_guard lk(m);
                    n.fetch_add(1);
                }
            } l{m, locked};
        });  // a normal scope exit: ~locker parks on m
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(locked.load(), 1);
}

namespace {

// Trials of the two stop() races: each hit about 1 in 20 before the fix
// (release); 3000 took 39 s under TSan.
constexpr int max_stop_trials = goro_test::sanitized ? 1000 : 3000;

// 63 after_funcs due at `due`, so that the timer heap pops them, with the
// one under test, as one batch and fires them one after another: the window
// in which the batch is popped (not in the heap) but not yet fired.
std::vector<goro::timer> batch_due_at(goro::clock::time_point due) {
    std::vector<goro::timer> others;
    for (int i = 0; i < 63; ++i)
        others.push_back(goro::after_func(due - goro::clock::now(), [] {}));
    return others;
}

// Busy-waits (no park) until `at`, on this worker; the other worker fires.
void spin_until(goro::clock::time_point at) {
    while (goro::clock::now() < at) {
    }
}

}  // namespace

// Bug 2: stop() racing the timer's own fire. run_due_timers pops the due
// timers (timer_heap) and then calls each fire(); a stop() in between
// disarms the timer (state.current = null), finds it no longer in the heap
// (timer_remove: false), waits for the fire, which sees itself stale and
// does nothing, and returns false. Go: "If t.Stop returns false, then the
// timer has already expired and the function f has been started in its own
// goroutine". Here f never runs: whoever trusted stop() waits forever (the
// soak hung on a wait_group counting the after_funcs still to run).
// On 2 workers about 1 trial in 20 hits it (release build).
TEST(SoakFound, AfterFuncStopRacingItsFireReturnsFalseButNeverRuns) {
    int stop_false = 0, never_ran = 0, trials = 0;
    goro::run(procs(2), [&] {
        for (; trials < max_stop_trials && never_ran == 0; ++trials) {
            auto ran = std::make_shared<std::atomic<int>>(0);
            const auto due = goro::clock::now() + 300us;
            std::vector<goro::timer> others = batch_due_at(due);
            goro::timer t =
                goro::after_func(due - goro::clock::now(), [ran] { ran->fetch_add(1); });
            spin_until(due + std::chrono::microseconds((trials * 7) % 150));  // sweep the window
            const bool stopped = t.stop();
            // Idle workers between trials (the timer watcher then fires the
            // next batch); and a function that was started has run by now.
            goro::sleep_for(2ms);
            if (!stopped) {
                ++stop_false;
                // Started means it will run: give it time (a loaded machine
                // may keep its goroutine queued well past 2 ms).
                for (int k = 0; k < 2000 && ran->load() == 0; ++k) goro::sleep_for(1ms);
                if (ran->load() == 0) ++never_ran;
            }
        }
    });
    EXPECT_EQ(never_ran, 0) << "in " << trials << " trials stop() returned false " << stop_false
                            << " times, and " << never_ran
                            << " of those times the function never ran";
}

// Bug 2 for a channel timer: stop() returns false although nobody received
// its value and none will ever arrive (the stale fire delivered nothing).
// goro/time.hpp: stop() is "false if it had already fired (and its value
// was received) or was stopped". The pre-1.23 Go idiom
// `if (!t.stop()) t.c().recv();` then blocks forever.
TEST(SoakFound, TimerStopRacingItsFireReturnsFalseWithNoValueReceived) {
    int false_without_value = 0, trials = 0;
    goro::run(procs(2), [&] {
        for (; trials < max_stop_trials && false_without_value == 0; ++trials) {
            const auto due = goro::clock::now() + 300us;
            std::vector<goro::timer> others = batch_due_at(due);
            goro::timer t(due - goro::clock::now());
            spin_until(due + std::chrono::microseconds((trials * 7) % 150));
            // Nobody receives from t.c(): only true is right.
            if (!t.stop()) ++false_without_value;
            goro::sleep_for(2ms);
        }
    });
    EXPECT_EQ(false_without_value, 0)
        << "stop() returned false " << false_without_value << " time(s) in " << trials
        << " trials, with no value received";
}

// Bug 3: a timer firing at the very end of shutdown starts a goroutine that
// never runs nor unwinds. Workers keep running due timers until
// scheduler::stop() sets `stopping`, which shutdown_locked does once live()
// has read 0; an after_func (or a context deadline that starts a
// context_after_func) fired in between spawns a goroutine into a run queue
// that no worker looks at again. Its closure is never destroyed (whatever it
// owns leaks: LeakSanitizer reports the after_func's closure), its stack
// slot is never reused, and after run() dump_goroutines still lists it as
// runnable — against runtime.hpp: goroutines still there when fn returns
// "are unwound (their destructors run) before run returns".
TEST(SoakFound, TimerFiringAtTheEndOfShutdownStrandsAGoroutine) {
    static std::atomic<long> made{0}, destroyed{0};
    struct witness {
        bool armed = true;
        witness() { made.fetch_add(1); }
        witness(witness&& o) noexcept : armed(std::exchange(o.armed, false)) {}
        ~witness() {
            if (armed) destroyed.fetch_add(1);
        }
    };
    int runs = 0;
    const int max_runs = goro_test::sanitized ? 40 : 100;  // 46 s under TSan at 100
    for (; runs < max_runs && made.load() == destroyed.load(); ++runs) {
        goro::run(procs(2), [] {
            // 2000 after_funcs coming due every 2 us through the shutdown.
            const auto t0 = goro::clock::now();
            for (int i = 0; i < 2000; ++i)
                goro::after_func(t0 + std::chrono::microseconds(200 + i * 2) - goro::clock::now(),
                                 [w = witness{}] {});
            goro::sleep_until(t0 + 2200us);
        });
    }
    EXPECT_EQ(made.load(), destroyed.load())
        << "after " << runs << " runs, after_func closures never destroyed";
    std::ostringstream dump;
    goro::dump_goroutines(dump);
    EXPECT_EQ(dump.str().find("[runnable]"), std::string::npos)
        << "goroutines left behind by run():\n"
        << dump.str();
}

// Bug 4: a plain thread that wakes a goroutine is still inside ready() when
// the scheduler is deleted. From a plain thread, scheduler::ready pushes the
// goroutine on the global queue and then calls wakep(), which reads nidle
// and nspinning (and may lock idle_mu and wake a worker). Once the goroutine
// is on the queue a worker may run it; if it was the last one and run()'s
// function has returned, shutdown_locked deletes the scheduler while the
// thread is still in wakep(): a use-after-free (TSan: "data race ... operator
// delete ... shutdown_locked" against "atomic read ... scheduler::wakep ...
// ready ... select_impl" on the thread). Nothing but run() returning is
// needed: here a thread keeps handing values to receivers as run() ends.
// The oracle is TSan (build/tsan; seen within ~20 s), with
//   TSAN_OPTIONS=halt_on_error=1:suppressions=tests/soak/tsan_moodycamel.supp
// (else a TSan false positive inside moodycamel's queue may be reported
// first); without a sanitizer the test passes unless the thread happens to
// be preempted inside that window.
TEST(SoakFound, PlainThreadWakingAGoroutineRacesTheSchedulerDelete) {
    // 1500 under TSan: 3000 took 86 s in a loaded fresh-clone CI run, and
    // 20000 passed the 300 s test timeout beside other tests.
    const int runs = goro_test::thread_sanitized ? 1500 : 2000;
    for (int run = 0; run < runs; ++run) {
        auto ch = goro::make_chan<int>();
        auto quit = goro::make_chan<goro::unit>();
        std::thread t([ch, quit] {
            for (bool stop = false; !stop;)
                goro::select(goro::send_case(ch, 1), goro::recv_case(quit, [&] { stop = true; }));
        });
        goro::run(procs(8), [&] {
            for (int k = 0; k < 4; ++k)
                goro::go([ch] {
                    for (;;) ch.recv();
                });
            goro::sleep_for(std::chrono::microseconds(100 + run % 400));
        });
        quit.close();
        t.join();
    }
}
