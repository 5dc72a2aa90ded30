// tests/hostile14_test.cpp — a hostile reviewer's tests of direct switches
// (scheduler::switch_out, 10f2627): a goroutine that parks, yields or exits
// switches straight to the next one, which finishes the first one's switch
// on its own stack.
#include <alloca.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "stack_util.hpp"
#include "stacks/stack_pool.hpp"
#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using goro_test::current_slot_lo;
using goro_test::procs;
using goro_test::scaled;

// goro::blocking(ctx, fn) parks holding its call's lock (a leaf of the lock
// order: nothing may be taken under it; goro/detail/lock_rank.hpp), which
// the park's unlock callback releases after the switch. The next goroutine
// must be picked with nothing held: here a goroutine locked to the worker
// (lock_os_thread) waits in its pinned queue, whose lock is the global
// queue's rank. Builds with GORO_ASSERTS (Debug, ASan, TSan) abort on a
// lock taken out of order.
TEST(Hostile14, ParkUnderALeafLockPicksTheNextGoroutineWithNothingHeld) {
    const long rounds = scaled(200);
    goro_test::watchdog dog("blocking(ctx) beside a locked yielder hung", 60s);
    for (int run = 0; run < 5; ++run) {
        std::atomic<long> calls{0}, yields{0};
        goro::run(procs(1), [&] {
            std::atomic<bool> stop{false};
            goro::wait_group wg;
            wg.go([&] {
                goro::lock_os_thread();
                while (!stop.load()) {
                    goro::yield();
                    yields.fetch_add(1);
                }
                goro::unlock_os_thread();
            });
            wg.go([&] {
                auto [ctx, cancel] = goro::with_cancel(goro::background());
                for (long i = 0; i < rounds; ++i) {
                    // Returns once the locked goroutine has run meanwhile:
                    // it then waits in the pinned queue at the next park.
                    const long seen = yields.load();
                    EXPECT_EQ(goro::blocking(ctx,
                                             [i, seen, &yields] {
                                                 while (yields.load() < seen + 2)
                                                     std::this_thread::yield();
                                                 return i;
                                             }),
                              i);
                    calls.fetch_add(1);
                    dog.pet();
                }
                cancel();
                stop.store(true);
            });
            wg.wait();
        });
        EXPECT_EQ(calls.load(), rounds);
        EXPECT_GT(yields.load(), 0);
    }
}

namespace {

[[gnu::noinline]] void receive_here(goro::chan<int>& c) {
    (void)c.recv();
}

// Lowers the stack pointer to about `target` (an alloca), then receives.
[[gnu::noinline]] void receive_at(goro::chan<int>& c, std::uintptr_t target) {
    const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    const std::size_t pad = sp > target + 256 ? sp - target - 256 : 0;
    volatile char* p = static_cast<char*>(alloca(pad + 16));
    p[0] = 1;
    receive_here(c);
    p[0] = 2;
}

// Recurses in small frames down to a page above `target`, then receive_at.
[[gnu::noinline]] long descend_and_receive(goro::chan<int>& c, std::uintptr_t target,
                                           volatile char* prev) {
    volatile char frame[200];
    frame[0] = prev ? prev[0] : 1;
    frame[1] = frame[0];
    if (reinterpret_cast<std::uintptr_t>(&frame[0]) < target + 4096) {
        receive_at(c, target);
        return frame[0];
    }
    return descend_and_receive(c, target, frame) + frame[1];
}

// In a forked child: goroutine B (64 KiB stack) receives with `left` bytes
// of its stack left below the receive's caller, while the goroutine that
// will send waits in the worker's local queue: B's park switches straight
// to it. B prints "id=N;" first. Exits with 0 if nothing overflowed.
[[noreturn]] void overflow_child(long left) {
    ::alarm(20);  // a hang fails the parent's check too
    goro::options o;
    o.procs = 1;
    goro::run(o, [&] {
        auto ch = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] { ch.send(1); });  // to the local queue when B is spawned
        wg.go(goro::spawn_options{.stack_size = 64 << 10}, [&] {
            char id[32];
            const int n =
                std::snprintf(id, sizeof id, "id=%llu;",
                              static_cast<unsigned long long>(goro::this_goroutine::id()));
            ssize_t ignored = ::write(2, id, static_cast<std::size_t>(n));
            (void)ignored;
            descend_and_receive(ch, current_slot_lo() + static_cast<std::uintptr_t>(left), nullptr);
        });
        wg.wait();  // switches straight to B (runnext)
    });
    ::_exit(0);
}

enum class overflow_outcome { none, reported, unreported };

// Runs overflow_child(left) in a child process; `err` gets its stderr.
overflow_outcome overflow_with(long left, std::string& err) {
    int fds[2];
    if (::pipe(fds) != 0) return overflow_outcome::unreported;
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 2);
        ::close(fds[0]);
        ::close(fds[1]);
        overflow_child(left);
    }
    ::close(fds[1]);
    err.clear();
    char buf[1024];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        err.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return overflow_outcome::none;
    const std::size_t at = err.find("id=");
    if (at == std::string::npos) return overflow_outcome::unreported;
    const std::string id = err.substr(at + 3, err.find(';', at) - at - 3);
    return err.find("goro: fatal error: stack overflow: goroutine " + id + " ") != std::string::npos
               ? overflow_outcome::reported
               : overflow_outcome::unreported;
}

}  // namespace

// A goroutine that overflows its stack while it switches straight to the
// next one (its park's deepest frames: the switch itself) must be reported
// like any overflow, naming it. The worker's `current` names the next
// goroutine from the compare-and-swap in switch_out on, while the leaving
// one's stack still runs until the jump: the SIGSEGV handler looked for
// the fault below the next one's stack, found none, and passed the signal
// on (a bare "Segmentation fault"). The park is made with every amount of
// stack left, 8 bytes apart, across the park path's depth (the smallest
// amount that does not overflow, found by bisection, and 1 KiB below).
// (Under ASan the instrumented frames before the switch are the deepest,
// so the switch itself never overflows first there.)
// Each depth runs in a forked child: the parent must be single-threaded
// (ctest runs each test in a process of its own).
TEST(Hostile14, OverflowDuringADirectSwitchIsReported) {
    // Under TSan the switch's deepest frames are TSan's own fiber switch:
    // an overflow there hangs or kills the child inside TSan's runtime,
    // with direct switches or without (measured: switching through the
    // worker's loop, 31 of 77 depths hung).
    if (goro_test::thread_sanitized) GTEST_SKIP() << "an overflow inside TSan's fiber switch";
    std::string err;
    long ok = 16 << 10, bad = -64;  // none with 16 KiB left; surely one below the stack
    ASSERT_TRUE(overflow_with(ok, err) == overflow_outcome::none) << err;
    ASSERT_TRUE(overflow_with(bad, err) != overflow_outcome::none) << err;
    while (ok - bad > 8) {
        const long mid = bad + (ok - bad) / 2 / 8 * 8;
        (overflow_with(mid, err) == overflow_outcome::none ? ok : bad) = mid;
    }
    const long step = goro_test::sanitized ? 16 : 8;
    int reported = 0;
    for (long left = ok - 1024; left < ok; left += step) {
        const overflow_outcome r = overflow_with(left, err);
        EXPECT_TRUE(r != overflow_outcome::unreported)
            << "no report with " << left << " bytes left; the child's stderr: " << err;
        reported += r == overflow_outcome::reported;
    }
    EXPECT_GT(reported, 0);
}

// Everything that hands a worker over at once, on two workers while
// another goroutine moves the worker count between 1 and 2: ping-pong pairs
// (parks straight into the partner), goroutines exiting straight into new
// ones, yielders, sleepers, goroutines locked to their worker that park and
// yield, and blocking(ctx) calls (a park under a leaf lock); then run()
// ends with some of them parked for good (shutdown unwinds them). Every
// hand-off must arrive, nothing may hang, and the internal lock order must
// hold (GORO_ASSERTS builds).
TEST(Hostile14, MixedHandOffsWhileTheWorkerCountChanges) {
    goro_test::watchdog dog("mixed hand-offs hung", 60s);
    const long rounds = scaled(20000);
    for (int run = 0; run < 3; ++run) {
        std::atomic<long> pongs{0}, spawned_ran{0}, locked_rounds{0}, calls{0}, unwound{0};
        goro::run(procs(2), [&] {
            std::atomic<bool> stop{false};
            goro::wait_group wg;
            for (int pair = 0; pair < 2; ++pair) {
                auto ping = goro::make_chan<long>(), pong = goro::make_chan<long>();
                wg.go([ping, pong] {
                    for (long v : ping) pong.send(v);
                });
                wg.go([&, ping, pong] {
                    for (long i = 0; i < rounds; ++i) {
                        ping.send(i);
                        if (pong.recv() == i) pongs.fetch_add(1);
                        if (i % 8 == 0) goro::go([&] { spawned_ran.fetch_add(1); });
                        if (i % 64 == 0) dog.pet();
                    }
                    ping.close();
                });
            }
            wg.go([&] {
                goro::lock_os_thread();
                auto ch = goro::make_chan<int>(1);
                while (!stop.load()) {
                    ch.send(1);
                    (void)ch.recv();
                    goro::yield();
                    goro::sleep_for(std::chrono::microseconds(1));
                    locked_rounds.fetch_add(1);
                }
            });
            wg.go([&] {
                auto [ctx, cancel] = goro::with_cancel(goro::background());
                while (!stop.load()) {
                    (void)goro::blocking(ctx, [] { return 1; });
                    calls.fetch_add(1);
                    goro::yield();
                }
                cancel();
            });
            wg.go([&] {
                for (int k = 0; !stop.load(); ++k) {
                    goro::set_procs(k % 2 + 1);
                    goro::sleep_for(std::chrono::microseconds(200));
                }
                goro::set_procs(2);
            });
            // Parked for good: unwound by the shutdown at the end of run().
            auto never = goro::make_chan<int>();
            for (int k = 0; k < 8; ++k)
                goro::go([&, never] {
                    try {
                        (void)never.recv();
                    } catch (const goro::goroutine_exit&) {
                        unwound.fetch_add(1);
                        throw;
                    }
                });
            goro::go([&] {
                while (pongs.load() < 2 * rounds) goro::yield();
                stop.store(true);
            });
            wg.wait();
        });
        EXPECT_EQ(pongs.load(), 2 * rounds);
        EXPECT_EQ(spawned_ran.load(), 2 * ((rounds + 7) / 8));
        EXPECT_GT(locked_rounds.load(), 0);
        EXPECT_GT(calls.load(), 0);
        EXPECT_EQ(unwound.load(), 8);
    }
}
