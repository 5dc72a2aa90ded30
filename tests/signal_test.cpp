// goro::signal_notify / signal_stop / signal_context: OS signals relayed to
// channels and contexts. SIGUSR1/SIGUSR2 terminate the process by default,
// so every test keeps a subscription while it raises one.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

// The next value on ch within `within`, or nullopt.
std::optional<int> recv_within(const goro::chan<int>& ch, std::chrono::milliseconds within) {
    std::optional<int> got;
    goro::select(goro::recv_case(ch, [&](std::optional<int> v) { got = v; }),
                 goro::recv_case(goro::after(within), [](auto) {}));
    return got;
}

// The handler installed for sig now.
void (*handler_of(int sig))(int) {
    struct sigaction sa {};
    ::sigaction(sig, nullptr, &sa);
    return sa.sa_handler;
}

}  // namespace

TEST(Signal, RaiseIsDeliveredOnTheChannel) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>(1);
        goro::signal_notify(ch, {SIGUSR1, SIGUSR2});
        for (int sig : {SIGUSR1, SIGUSR2, SIGUSR1}) {
            ::raise(sig);
            EXPECT_EQ(recv_within(ch, 5s), sig);
        }
        goro::signal_stop(ch);
    });
}

TEST(Signal, AFullChannelDropsWithoutBlockingTheOthers) {
    goro::run(procs(2), [] {
        auto full = goro::make_chan<int>(1);
        auto unbuffered = goro::make_chan<int>();  // nobody receives: always "full"
        auto other = goro::make_chan<int>(8);
        goro::signal_notify(full, {SIGUSR1});
        goro::signal_notify(unbuffered, {SIGUSR1});
        goro::signal_notify(other, {SIGUSR1});
        for (int i = 0; i < 5; ++i) {
            ::raise(SIGUSR1);
            // Each delivery reaches `other` although `full` stays full.
            ASSERT_EQ(recv_within(other, 5s), SIGUSR1) << "round " << i;
        }
        EXPECT_EQ(full.size(), 1u);
        EXPECT_EQ(*full.try_recv(), SIGUSR1);
        EXPECT_TRUE(full.try_recv().empty()) << "more than one value in a channel of one";
        EXPECT_TRUE(unbuffered.try_recv().empty());
        goro::signal_stop(full);
        goro::signal_stop(unbuffered);
        goro::signal_stop(other);
    });
}

TEST(Signal, StopStopsDelivery) {
    goro::run(procs(2), [] {
        auto stopped = goro::make_chan<int>(4);
        auto guard = goro::make_chan<int>(4);
        goro::signal_notify(stopped, {SIGUSR1});
        goro::signal_notify(guard, {SIGUSR1});
        ::raise(SIGUSR1);
        ASSERT_EQ(recv_within(guard, 5s), SIGUSR1);
        ASSERT_EQ(recv_within(stopped, 5s), SIGUSR1);
        goro::signal_stop(stopped);
        goro::signal_stop(stopped);  // again: nothing
        for (int i = 0; i < 3; ++i) {
            ::raise(SIGUSR1);
            ASSERT_EQ(recv_within(guard, 5s), SIGUSR1);
        }
        // One delivery reaches every subscriber under one lock: had `stopped`
        // still been subscribed, it would have its values by now.
        EXPECT_TRUE(stopped.try_recv().empty()) << "delivered after signal_stop returned";
        goro::signal_stop(guard);
    });
}

TEST(Signal, NotifyAgainAddsSignalsToTheChannelsSet) {
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<int>(2);
        goro::signal_notify(ch, {SIGUSR1});
        goro::signal_notify(ch, {SIGUSR2, SIGUSR1});
        ::raise(SIGUSR2);
        EXPECT_EQ(recv_within(ch, 5s), SIGUSR2);
        ::raise(SIGUSR1);
        EXPECT_EQ(recv_within(ch, 5s), SIGUSR1);
        EXPECT_TRUE(ch.try_recv().empty()) << "delivered twice to one channel";
        goro::signal_stop(ch);
        EXPECT_EQ(handler_of(SIGUSR1), SIG_DFL);
        EXPECT_EQ(handler_of(SIGUSR2), SIG_DFL);
    });
}

TEST(Signal, TheLastStopRestoresThePreviousDisposition) {
    ::signal(SIGUSR2, SIG_IGN);
    auto a = goro::make_chan<int>(1);
    auto b = goro::make_chan<int>(1);
    goro::signal_notify(a, {SIGUSR2});
    goro::signal_notify(b, {SIGUSR2});
    EXPECT_NE(handler_of(SIGUSR2), SIG_IGN);
    goro::signal_stop(a);
    EXPECT_NE(handler_of(SIGUSR2), SIG_IGN) << "restored while b is still subscribed";
    goro::signal_stop(b);
    EXPECT_EQ(handler_of(SIGUSR2), SIG_IGN);
    ::raise(SIGUSR2);  // ignored, as before
    ::signal(SIGUSR2, SIG_DFL);
    EXPECT_TRUE(a.try_recv().empty());
}

TEST(Signal, SignalContextIsCancelledBySignal) {
    goro::run(procs(2), [] {
        auto [ctx, stop] = goro::signal_context(goro::background(), {SIGUSR2});
        EXPECT_FALSE(ctx.err());
        ::raise(SIGUSR2);
        bool done = false;
        goro::select(goro::recv_case(ctx.done(), [&](auto) { done = true; }),
                     goro::recv_case(goro::after(5s), [](auto) {}));
        ASSERT_TRUE(done);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
        std::string why;
        try {
            goro::cause(ctx).rethrow();
        } catch (const std::exception& e) {
            why = e.what();
        }
        EXPECT_NE(why.find("signal " + std::to_string(SIGUSR2)), std::string::npos) << why;
        // Until stop(), the signal stays caught (a second one does not kill).
        ::raise(SIGUSR2);
        goro::sleep_for(20ms);
        EXPECT_NE(handler_of(SIGUSR2), SIG_DFL);
        stop();
        stop();  // idempotent
        EXPECT_EQ(handler_of(SIGUSR2), SIG_DFL);
    });
}

TEST(Signal, SignalContextFollowsItsParentAndStopCancels) {
    goro::run(procs(2), [] {
        auto [parent, cancel] = goro::with_cancel(goro::background());
        auto [ctx, stop] = goro::signal_context(parent, {SIGUSR1});
        EXPECT_FALSE(ctx.err());
        cancel();
        bool done = false;
        goro::select(goro::recv_case(ctx.done(), [&](auto) { done = true; }),
                     goro::recv_case(goro::after(5s), [](auto) {}));
        EXPECT_TRUE(done);
        EXPECT_EQ(ctx.err(), goro::errc::canceled);
        EXPECT_EQ(parent.err(), goro::errc::canceled);
        stop();

        auto [ctx2, stop2] = goro::signal_context(goro::background(), {SIGUSR1});
        EXPECT_NE(handler_of(SIGUSR1), SIG_DFL);
        stop2();
        EXPECT_EQ(ctx2.err(), goro::errc::canceled) << "stop() must cancel, as Go's";
        EXPECT_EQ(handler_of(SIGUSR1), SIG_DFL);
    });
}

TEST(Signal, MisuseIsRefusedByName) {
    auto ch = goro::make_chan<int>(1);
    auto refused = [&](std::initializer_list<int> sigs, const char* needle) {
        try {
            goro::signal_notify(ch, sigs);
            ADD_FAILURE() << "accepted " << needle;
        } catch (const goro::misuse_error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("goro::signal_notify"), std::string::npos);
        }
    };
    refused({}, "no signals");
    refused({SIGKILL}, "SIGKILL");
    refused({SIGUSR1, SIGSTOP}, "SIGSTOP");
    refused({SIGSEGV}, "SIGSEGV");
    refused({SIGBUS}, "SIGBUS");
    refused({0}, "0 is not a signal");
    refused({NSIG}, "is not a signal");
    refused({32}, "reserved");
    EXPECT_THROW(goro::signal_notify(goro::chan<int>(), {SIGUSR1}), goro::misuse_error);
    EXPECT_THROW(goro::signal_context(goro::background(), {SIGKILL}), goro::misuse_error);
    // Nothing was installed by the refused calls.
    EXPECT_EQ(handler_of(SIGUSR1), SIG_DFL);
    goro::signal_stop(ch);                 // never subscribed: nothing
    goro::signal_stop(goro::chan<int>());  // nil: nothing
}

TEST(Signal, ASignalBetweenTwoRunsWaitsInTheChannel) {
    auto ch = goro::make_chan<int>(1);
    goro::run(procs(1), [&] { goro::signal_notify(ch, {SIGUSR1}); });
    ::raise(SIGUSR1);  // no runtime now
    for (int i = 0; i < 5000 && ch.size() == 0; ++i) std::this_thread::sleep_for(1ms);
    goro::run(procs(2), [&] { EXPECT_EQ(recv_within(ch, 5s), SIGUSR1); });
    // A plain thread blocked in recv gets it too.
    std::thread t([&] { ::raise(SIGUSR1); });
    EXPECT_EQ(ch.recv(), SIGUSR1);
    t.join();
    goro::signal_stop(ch);
}

TEST(Signal, SignalsDuringShutdownAndBetweenRuns) {
    auto ch = goro::make_chan<int>(1);
    goro::signal_notify(ch, {SIGUSR1});
    std::atomic<bool> stop{false};
    std::thread raiser([&] {
        while (!stop) {
            ::kill(::getpid(), SIGUSR1);  // to any thread of the process
            std::this_thread::sleep_for(100us);
        }
    });
    std::atomic<int> received{0};
    const int runs = static_cast<int>(goro_test::scaled(60, 3));
    for (int r = 0; r < runs; ++r) {
        goro::run(procs(2), [&] {
            for (int i = 0; i < 4; ++i)
                goro::go([&] {
                    for (;;) {
                        ch.recv();  // unwound at shutdown, mid-delivery or not
                        ++received;
                    }
                });
            goro::sleep_for(2ms);
        });
    }
    stop = true;
    raiser.join();
    goro::signal_stop(ch);
    EXPECT_GT(received, 0);
}

TEST(Signal, StopRacingWithDeliveriesNeverDeliversLate) {
    auto guard = goro::make_chan<int>(1);
    goro::signal_notify(guard, {SIGUSR1});  // keeps SIGUSR1 from killing us throughout
    std::atomic<bool> stop{false};
    std::thread raiser([&] {
        while (!stop) {
            ::kill(::getpid(), SIGUSR1);
            std::this_thread::sleep_for(50us);
        }
    });
    const int rounds = static_cast<int>(goro_test::scaled(400, 4));
    std::atomic<int> late{0};
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        for (int g = 0; g < 4; ++g)
            wg.go([&] {
                for (int i = 0; i < rounds / 4; ++i) {
                    auto ch = goro::make_chan<int>(64);
                    goro::signal_notify(ch, {SIGUSR1});
                    goro::sleep_for(200us);
                    goro::signal_stop(ch);
                    const std::size_t at_stop = ch.size();
                    goro::sleep_for(1ms);  // more signals meanwhile
                    if (ch.size() != at_stop) ++late;
                }
            });
        wg.wait();
    });
    stop = true;
    raiser.join();
    goro::signal_stop(guard);
    EXPECT_EQ(late, 0) << "a channel received a signal after signal_stop returned";
}

TEST(SignalDeathTest, AfterTheLastStopTheDefaultActionIsBack) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            auto ch = goro::make_chan<int>(1);
            goro::signal_notify(ch, {SIGUSR1});
            ::raise(SIGUSR1);  // caught
            if (ch.recv() != SIGUSR1) std::exit(3);
            goro::signal_stop(ch);
            ::raise(SIGUSR1);  // kills
            std::exit(4);
        },
        ::testing::KilledBySignal(SIGUSR1), "");
}

// A signal sent to the process (kill from outside, not raise) goes to any
// thread that does not block it; the kernel tries the main thread first,
// which sits in goro::run, asleep on a futex. It must still be delivered,
// promptly, every time.
TEST(Signal, ASignalToTheProcessReachesTheChannelWhileRunWaits) {
    // TSan runs an async signal's handler only when the receiving thread
    // next enters one of its interceptors; a thread asleep in a raw futex
    // syscall (run()'s caller, an idle worker) holds it until it wakes.
    // Seen: 1 run in 15 with three copies at once missed the 2 s.
    if (goro_test::thread_sanitized)
        GTEST_SKIP() << "TSan defers signals to sleeping threads (see comment)";
    auto ch = goro::make_chan<int>(1);
    goro::signal_notify(ch, {SIGUSR1});
    const int rounds = 20;
    int got = 0;
    goro::run(procs(2), [&] {
        for (int i = 0; i < rounds; ++i) {
            std::thread([] { ::kill(::getpid(), SIGUSR1); }).join();
            if (recv_within(ch, 2s) == SIGUSR1) ++got;
        }
    });
    goro::signal_stop(ch);
    EXPECT_EQ(got, rounds) << "a signal sent to the process was not delivered within 2 s";
}

// Review 12: signal_stop after signal_notify(SIGQUIT) dropped the runtime's
// SIGQUIT dump (options::dump_on_sigquit) when the subscription was made
// before the dump handler was installed: the install overwrote goro's relay
// (the channel got no SIGQUIT) and the stop restored the default (SIGQUIT
// then killed the process). The dump is back after the stop, and the
// subscription receives SIGQUIT while it lasts. (Installed once per
// process: run alone, as ctest does, for the check to mean something.)
TEST(Signal, SigquitDumpIsBackAfterStopWhenNotifyCameFirst) {
    auto ch = goro::make_chan<int>(4);
    goro::signal_notify(ch, {SIGQUIT});
    goro::options o = procs(2);
    o.dump_on_sigquit = true;
    testing::internal::CaptureStderr();
    goro::run(o, [&] {
        ::raise(SIGQUIT);
        EXPECT_EQ(recv_within(ch, 5s), SIGQUIT) << "the subscription lost SIGQUIT";
        goro::signal_stop(ch);
        EXPECT_NE(handler_of(SIGQUIT), SIG_DFL) << "SIGQUIT would kill the process";
        ::raise(SIGQUIT);        // the dump now
        goro::sleep_for(100ms);  // the monitor writes it within a few ms
        EXPECT_FALSE(ch.try_recv()) << "delivered after signal_stop";
    });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("goroutine(s)"), std::string::npos) << err;
}

// The same with the dump handler installed first (run's options), the
// subscription made and stopped inside the run.
TEST(Signal, SigquitDumpIsBackAfterStopWhenRunCameFirst) {
    goro::options o = procs(2);
    o.dump_on_sigquit = true;
    testing::internal::CaptureStderr();
    goro::run(o, [&] {
        auto ch = goro::make_chan<int>(4);
        goro::signal_notify(ch, {SIGQUIT});
        ::raise(SIGQUIT);
        EXPECT_EQ(recv_within(ch, 5s), SIGQUIT);
        goro::signal_stop(ch);
        EXPECT_NE(handler_of(SIGQUIT), SIG_DFL) << "SIGQUIT would kill the process";
        ::raise(SIGQUIT);
        goro::sleep_for(100ms);
        EXPECT_FALSE(ch.try_recv()) << "delivered after signal_stop";
    });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("goroutine(s)"), std::string::npos) << err;
}
