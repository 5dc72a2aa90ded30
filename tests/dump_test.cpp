// Tests of the goroutine dump: grouping, what a goroutine waits on, how long
// it has waited, and the SIGQUIT trigger.
#include <gtest/gtest.h>
#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

std::string dump_text() {
    std::ostringstream os;
    goro::dump_goroutines(os);
    return os.str();
}

}  // namespace

TEST(Dump, GroupsGoroutinesWaitingOnTheSameChannelFromTheSameSite) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>();
        goro::wait_group done;
        for (int i = 0; i < 10; ++i) done.go([&] { (void)ch.recv(); });
        goro::sleep_for(30ms);  // all ten parked, and for a while
        const std::string s = dump_text();
        EXPECT_NE(s.find("10 goroutines [waiting, chan receive"), std::string::npos) << s;
        EXPECT_NE(s.find("]: chan 0x"), std::string::npos) << s;
        EXPECT_NE(s.find("dump_test.cpp"), std::string::npos) << s;
        EXPECT_NE(s.find(" ms]"), std::string::npos) << s;             // waited a measurable time
        EXPECT_NE(s.find("11 goroutine(s)"), std::string::npos) << s;  // + the main goroutine
        ch.close();
        done.wait();
    });
}

TEST(Dump, ShowsWhenASleeperWakes) {
    goro::run(procs(1), [] {
        // A plain go(): shutdown unwinds the sleeper after this function
        // has returned, so it must not touch anything of this frame (a
        // wait_group here, whose done() it called from its unwinding
        // guard, was read after its scope ended: the exit path's deeper
        // frames overwrote it, and done() saw a negative counter).
        goro::go([] { goro::sleep_for(10s); });
        goro::sleep_for(5ms);
        const std::string s = dump_text();
        EXPECT_NE(s.find("[waiting, sleep"), std::string::npos) << s;
        EXPECT_NE(s.find("wakes in "), std::string::npos) << s;
    });
}

TEST(Dump, SigquitWritesTheDumpToStderrAndTheProgramGoesOn) {
    goro::options o = procs(2);
    o.dump_on_sigquit = true;
    testing::internal::CaptureStderr();
    goro::run(o, [] {
        goro::mutex m;
        m.lock();
        goro::wait_group done;
        done.go([&] {
            m.lock();
            m.unlock();
        });
        goro::sleep_for(5ms);
        ::raise(SIGQUIT);
        goro::sleep_for(100ms);  // the monitor writes it within a few ms
        m.unlock();
        done.wait();
    });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("mutex lock"), std::string::npos) << err;
    EXPECT_NE(err.find("goroutine(s)"), std::string::npos) << err;
}

// With every worker asleep the monitor sleeps deep (up to 10 s): SIGQUIT
// must wake it, not wait for the next goroutine to run. Here nothing runs
// for 3 s after the signal; the dump must arrive well before that. (Before
// the handler woke the monitor, it came when the sleeper's worker woke.)
TEST(Dump, SigquitWakesTheMonitorOfAnIdleRuntime) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const int saved_stderr = ::dup(2);
    ASSERT_GE(saved_stderr, 0);
    std::fflush(stderr);
    ASSERT_GE(::dup2(fds[1], 2), 0);
    ::close(fds[1]);
    using clock = std::chrono::steady_clock;
    std::atomic<clock::rep> first_byte{0};
    std::string text;
    std::thread reader([&] {
        char buf[4096];
        for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
            if (text.empty()) first_byte.store(clock::now().time_since_epoch().count());
            text.append(buf, static_cast<std::size_t>(n));
        }
    });
    clock::time_point raised;
    goro::options o = procs(2);
    o.dump_on_sigquit = true;
    goro::run(o, [&] {
        std::thread signaller([&] {
            std::this_thread::sleep_for(200ms);  // every worker asleep by then
            raised = clock::now();
            ::raise(SIGQUIT);
        });
        goro::sleep_for(3200ms);
        signaller.join();
    });
    std::fflush(stderr);
    ::dup2(saved_stderr, 2);  // closes the pipe's last write end: the reader ends
    ::close(saved_stderr);
    reader.join();
    ::close(fds[0]);
    ASSERT_NE(first_byte.load(), 0) << "no dump at all";
    const auto waited = clock::time_point(clock::duration(first_byte.load())) - raised;
    EXPECT_LT(waited, 1500ms) << "the dump waited for a goroutine to run";
    EXPECT_NE(text.find("goroutine(s)"), std::string::npos) << text;
}
