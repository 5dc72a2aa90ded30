// Tests of goro::testing's leak check (find_leaks, expect_no_leaks and the
// GoogleTest listener the suite's main installs).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "goro/testing.hpp"

using namespace std::chrono_literals;

TEST(LeakCheck, FindsAGoroutineLeftParkedAndNamesWhereItWasCreated) {
    const auto baseline = goro::testing::live_goroutines();
    auto ch = goro::make_chan<int>();
    goro::go([ch] { (void)ch.recv(); });  // from a plain thread: the lazy runtime
    const std::string leaks = goro::testing::find_leaks(baseline, 50ms);
    EXPECT_NE(leaks.find("chan receive"), std::string::npos) << leaks;
    EXPECT_NE(leaks.find("leak_test.cpp"), std::string::npos) << leaks;
    EXPECT_NE(leaks.find("1 goroutine(s) leaked"), std::string::npos) << leaks;
    EXPECT_THROW(goro::testing::expect_no_leaks(baseline, 10ms), goro::testing::leak_error);
    ch.send(1);  // let it finish
    EXPECT_EQ(goro::testing::find_leaks(baseline, 2s), "");
}

TEST(LeakCheck, AGoroutineFinishingWithinTheGracePeriodIsNoLeak) {
    const auto baseline = goro::testing::live_goroutines();
    goro::go([] { goro::sleep_for(50ms); });
    EXPECT_EQ(goro::testing::find_leaks(baseline, 5s), "");
    EXPECT_NO_THROW(goro::testing::expect_no_leaks(baseline));
}

TEST(LeakCheck, GoroutinesAliveAtTheBaselineAreNotLeaks) {
    auto ch = goro::make_chan<int>();
    goro::go([ch] { (void)ch.recv(); });
    goro::sleep_for(5ms);
    const auto baseline = goro::testing::live_goroutines();
    EXPECT_EQ(baseline.size(), 1u);
    EXPECT_EQ(goro::testing::find_leaks(baseline, 10ms), "");
    ch.send(1);
    EXPECT_EQ(goro::testing::find_leaks({}, 2s), "");
}

TEST(LeakCheck, InsideRunTheCallerIsNotALeak) {
    goro::run([] {
        EXPECT_EQ(goro::testing::find_leaks({}, 10ms), "");
        goro::wait_group wg;
        auto ch = goro::make_chan<int>();
        wg.go([ch] { (void)ch.recv(); });
        EXPECT_NE(goro::testing::find_leaks({}, 10ms), "");
        ch.close();
        wg.wait();
        EXPECT_EQ(goro::testing::find_leaks({}, 1s), "");
    });
}

// Leaks on purpose: run only by the ctest entry LeakCheck.ListenerFailsALeakingTest
// (tests/CMakeLists.txt), which expects the listener's failure message.
TEST(LeakCheck, DISABLED_LeaksOnPurpose) {
    auto ch = goro::make_chan<int>();
    goro::go([ch] { (void)ch.recv(); });
}
