// Tests of the goroutine dump: grouping, what a goroutine waits on, how long
// it has waited, and the SIGQUIT trigger.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <sstream>
#include <string>

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
        goro::wait_group done;
        done.go([] { goro::sleep_for(10s); });
        goro::sleep_for(5ms);
        const std::string s = dump_text();
        EXPECT_NE(s.find("[waiting, sleep"), std::string::npos) << s;
        EXPECT_NE(s.find("wakes in "), std::string::npos) << s;
        // Shutdown unwinds the sleeper.
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
