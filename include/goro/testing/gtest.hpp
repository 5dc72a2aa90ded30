// goro/testing/gtest.hpp — a GoogleTest listener that fails every test that
// leaves goroutines behind (header-only: goro does not link GoogleTest).
//
//   int main(int argc, char** argv) {
//       ::testing::InitGoogleTest(&argc, argv);
//       goro::testing::install_leak_check();
//       return RUN_ALL_TESTS();
//   }
//
// The check runs at the end of each test, after its TearDown, against the
// goroutines alive when the test started; the failure lists the leaked ones
// with their creation sites and is reported as part of the test.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "goro/testing.hpp"

namespace goro::testing {

// The GoogleTest listener install_leak_check installs: a test fails if it
// leaves goroutines behind (after waiting `grace` for them to finish).
class leak_check_listener : public ::testing::EmptyTestEventListener {
  public:
    // Waits up to grace for a test's goroutines to finish before it counts
    // them as leaked.
    explicit leak_check_listener(std::chrono::milliseconds grace) : grace_(grace) {}
    // GoogleTest's hooks: note the goroutines alive as a test starts; fail
    // the test if others are alive after it.
    void OnTestStart(const ::testing::TestInfo&) override { baseline_ = live_goroutines(); }
    void OnTestEnd(const ::testing::TestInfo&) override {
        const std::string leaks = find_leaks(baseline_, grace_);
        if (!leaks.empty()) ADD_FAILURE() << "goroutines leaked by this test:\n" << leaks;
    }

  private:
    std::chrono::milliseconds grace_;
    std::vector<goroutine_id> baseline_;
};

// Installs the listener ahead of the default printer, so that a leak is
// printed as a failure of the test that leaked. Call after InitGoogleTest.
inline void install_leak_check(std::chrono::milliseconds grace = std::chrono::seconds(1)) {
    ::testing::TestEventListeners& ls = ::testing::UnitTest::GetInstance()->listeners();
    ::testing::TestEventListener* printer = ls.Release(ls.default_result_printer());
    ls.Append(new leak_check_listener(grace));
    if (printer) ls.Append(printer);
}

}  // namespace goro::testing
