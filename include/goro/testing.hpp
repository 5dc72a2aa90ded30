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
#include <vector>

namespace goro::testing {

// Identities of the goroutines alive now (excluding the caller).
struct goroutine_id {
    std::uint64_t id;
    const void* record;  // ids restart with each run(); the pair is unique
    friend bool operator==(const goroutine_id&, const goroutine_id&) = default;
};
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

}  // namespace goro::testing
