// Tests that a goroutine that never parks (a busy loop, a long computation)
// does not keep goro::run from returning (issue 12, item 3): about 1 s after
// the shutdown starts unwinding, each such goroutine is reported on stderr
// by id and creation site and abandoned — its worker thread is detached and
// left running it, the runtime's memory leaked — and run() returns. A later
// run() works. The spinners' flags are static: an abandoned spinner outlives
// the test body (it is released at the end, goes on as a plain thread, and
// its thread sleeps for ever once it ends).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "scheduler/scheduler.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

struct spin_flags {
    std::atomic<bool> stop{false};
    std::atomic<int> started{0};
    std::atomic<std::uint64_t> ids[4] = {};
    std::atomic<bool> went_on{false};  // it ran past a call into goro after being abandoned
};

// Leaked on purpose: an abandoned spinner may read them until the process ends.
spin_flags& flags() {
    static spin_flags* f = new spin_flags;
    return *f;
}

bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

// Spawns n spinners from run()'s main (on procs workers, procs > n: one is
// left for main and the unwinding) and returns once they all spin; returns
// the creation line.
int spawn_spinners(int n) {
    spin_flags& f = flags();
    const int line = __LINE__ + 2;
    for (int i = 0; i < n; ++i)
        goro::go([i] {
            spin_flags& f = flags();
            f.ids[i].store(goro::this_goroutine::id());
            f.started.fetch_add(1);
            while (!f.stop.load(std::memory_order_relaxed)) {
            }
            // Abandoned meanwhile, its thread is a plain thread to goro
            // now: calls work as from one (a sleep parks the thread).
            goro::yield();
            goro::sleep_for(1ms);
            f.went_on.store(true);
        });
    while (f.started.load() < n) goro::sleep_for(1ms);
    return line;
}

void expect_second_run_works() {
    EXPECT_EQ(goro_test::value_through_a_fresh_run(), 42)
        << "a run() after one that abandoned a spinner";
}

void run_with_spinners(int n, unsigned workers) {
    spin_flags& f = flags();
    int line = 0;
    testing::internal::CaptureStderr();
    const auto t0 = std::chrono::steady_clock::now();
    goro::run(procs(workers), [&] { line = spawn_spinners(n); });
    const auto took = std::chrono::steady_clock::now() - t0;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_LT(took, 10s) << "run() waited for a goroutine that never parks";
    for (int i = 0; i < n; ++i) {
        const std::string id = "goroutine " + std::to_string(f.ids[i].load()) + " ";
        EXPECT_TRUE(contains(err, id)) << "stderr does not name " << id << ":\n" << err;
    }
    EXPECT_TRUE(contains(err, "spinner_shutdown_test.cpp:" + std::to_string(line)))
        << "stderr does not name the creation site (line " << line << "):\n"
        << err;
    EXPECT_TRUE(contains(err, "without blocking")) << err;
    expect_second_run_works();
    // Released, each goes on as a plain thread, then ends (its thread then
    // sleeps for ever: it has no worker to go back to).
    f.stop.store(true);
    for (int i = 0; i < 5000 && !f.went_on.load(); ++i) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(f.went_on.load()) << "an abandoned spinner's calls into goro did not return";
    goro::run(procs(2), [] { goro::sleep_for(10ms); });
}

}  // namespace

TEST(SpinnerShutdown, RunReturnsDespiteAGoroutineThatNeverParks) {
    run_with_spinners(1, 2);
}

TEST(SpinnerShutdown, RunReturnsDespiteSpinnersOnTwoWorkers) {
    run_with_spinners(2, 3);
}

// Every worker spinning: run()'s main returns at once, and its two spinners
// then take both workers.
TEST(SpinnerShutdown, RunReturnsWithBothWorkersSpinning) {
    spin_flags& f = flags();
    testing::internal::CaptureStderr();
    const auto t0 = std::chrono::steady_clock::now();
    goro::run(procs(2), [] {
        for (int i = 0; i < 2; ++i)
            goro::go([i] {
                spin_flags& f = flags();
                f.ids[i].store(goro::this_goroutine::id());
                f.started.fetch_add(1);
                while (!f.stop.load(std::memory_order_relaxed)) {
                }
            });
    });
    const auto took = std::chrono::steady_clock::now() - t0;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_LT(took, 10s);
    EXPECT_EQ(f.started.load(), 2);
    for (int i = 0; i < 2; ++i)
        EXPECT_TRUE(contains(err, "goroutine " + std::to_string(f.ids[i].load()) + " ")) << err;
    expect_second_run_works();
    f.stop.store(true);
}

// The lazy runtime: a spinner started from a plain thread does not keep the
// next run() (which replaces a lazy runtime of another shape) from starting.
TEST(SpinnerShutdown, ReplacingALazyRuntimeWithASpinner) {
    spin_flags& f = flags();
    testing::internal::CaptureStderr();
    goro::go([] {
        spin_flags& f = flags();
        f.started.fetch_add(1);
        while (!f.stop.load(std::memory_order_relaxed)) {
        }
    });
    while (f.started.load() < 1) std::this_thread::sleep_for(1ms);
    const auto t0 = std::chrono::steady_clock::now();
    int ran = 0;
    // Another shape: the lazy runtime (hardware-sized) is shut down first.
    goro::options o = procs(goro::maxprocs() == 7 ? 6 : 7);
    goro::run(o, [&] { ran = 1; });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(ran, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    EXPECT_TRUE(contains(err, "without blocking")) << err;
    f.stop.store(true);
}

// One worker, taken by a spinner: nothing is left to unwind the goroutines
// parked at shutdown. They are reported and abandoned too (their
// destructors do not run), and run() returns.
TEST(SpinnerShutdown, OneWorkerSpinningAbandonsTheParkedToo) {
    static std::atomic<bool> stop{false};  // read by the spinner for ever
    static std::atomic<bool> spinning{false};
    std::atomic<int> unwound{0};
    testing::internal::CaptureStderr();
    const auto t0 = std::chrono::steady_clock::now();
    goro::run(procs(1), [&] {
        auto never = goro::make_chan<int>();
        for (int i = 0; i < 3; ++i)
            goro::go([never, &unwound] {
                struct guard {
                    std::atomic<int>& n;
                    ~guard() { n.fetch_add(1); }
                } g{unwound};
                never.recv();
            });
        goro::yield();  // the three park
        // Started last: it takes the worker once main returns.
        goro::go([] {
            spinning.store(true);
            while (!stop.load(std::memory_order_relaxed)) {
            }
        });
    });
    const auto took = std::chrono::steady_clock::now() - t0;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_LT(took, 10s) << "run() waited for goroutines that no worker could unwind";
    EXPECT_TRUE(spinning.load());
    EXPECT_TRUE(contains(err, "without blocking")) << err;
    EXPECT_TRUE(contains(err, "no worker is left to unwind it")) << err;
    EXPECT_EQ(unwound.load(), 0) << "abandoned goroutines' destructors do not run";
    expect_second_run_works();
    stop.store(true);
}

// Hostile round 13: the workers that take work all lost to a spinner, but a
// retired one (set_procs) still runs the goroutines locked to it. Those
// were reported as "no worker is left to unwind it" and abandoned while
// they unwound there: their destructors stopped half-way when run()
// returned. Now shutdown waits for them; one locked goroutine that sleeps
// in its destructor (timers need a worker that takes work: none is left)
// is still abandoned, so run() returns.
TEST(SpinnerShutdown, GoroutinesLockedToARetiredWorkerStillUnwind) {
    static std::atomic<bool> stop{false};  // read by the spinner for ever
    std::atomic<int> unwound{0}, locked{0};
    testing::internal::CaptureStderr();
    goro::run(procs(2), [&] {
        auto never = goro::make_chan<int>();
        for (int i = 0; i < 3; ++i)
            goro::go([never, &unwound, &locked, i] {
                while (goro::detail::this_worker()->index != 1) goro::yield();
                goro::lock_os_thread();
                locked.fetch_add(1);
                struct guard {
                    std::atomic<int>& n;
                    bool sleeps;
                    ~guard() {
                        if (sleeps) goro::sleep_for(1h);
                        // Runs on past the spinner's 1 s grace, switching often.
                        const auto until = std::chrono::steady_clock::now() + 1500ms;
                        while (std::chrono::steady_clock::now() < until) goro::yield();
                        n.fetch_add(1);
                    }
                } g{unwound, i == 0};
                never.recv();
            });
        while (locked.load() < 3) goro::sleep_for(1ms);
        goro::set_procs(1);  // main is on worker 0 from here; worker 1 retires
        goro::go([] {
            while (!stop.load(std::memory_order_relaxed)) {
            }
        });
    });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "without blocking")) << err;
    EXPECT_EQ(unwound.load(), 2) << "the locked goroutines' destructors ran to the end\n" << err;
    expect_second_run_works();
    stop.store(true);
}
