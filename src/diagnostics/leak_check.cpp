// diagnostics/leak_check.cpp — goro::testing's leak check (goleak's job):
// snapshots of the live goroutines compared with a baseline, retried with a
// growing pause until the grace period ends. Holds no lock between
// snapshots; a goroutine that is finishing is given the grace period.
#include <algorithm>
#include <sstream>
#include <thread>

#include "diagnostics/snapshot.hpp"
#include "goro/runtime.hpp"
#include "goro/testing.hpp"
#include "goro/time.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::testing {

namespace {

std::vector<detail::goroutine_snapshot> others() {
    std::vector<detail::goroutine_snapshot> all = detail::take_snapshots();
    const void* self = detail::this_goroutine_record();
    std::erase_if(all, [&](const detail::goroutine_snapshot& s) { return s.record == self; });
    return all;
}

std::vector<detail::goroutine_snapshot> leaked(const std::vector<goroutine_id>& baseline) {
    std::vector<detail::goroutine_snapshot> all = others();
    std::erase_if(all, [&](const detail::goroutine_snapshot& s) {
        return s.abandoned ||  // reported by the shutdown that gave up on it
               std::find(baseline.begin(), baseline.end(), goroutine_id{s.id, s.record}) !=
                   baseline.end();
    });
    return all;
}

void pause(std::chrono::milliseconds d) {
    if (detail::this_goroutine_record())
        goro::sleep_for(d);  // frees the worker for the goroutines that are finishing
    else
        std::this_thread::sleep_for(d);
}

}  // namespace

std::vector<goroutine_id> live_goroutines() {
    std::vector<goroutine_id> ids;
    for (const detail::goroutine_snapshot& s : others()) ids.push_back({s.id, s.record});
    return ids;
}

std::string find_leaks(const std::vector<goroutine_id>& baseline, std::chrono::milliseconds grace) {
    const auto give_up = std::chrono::steady_clock::now() + grace;
    std::chrono::milliseconds step{1};
    for (;;) {
        std::vector<detail::goroutine_snapshot> left = leaked(baseline);
        if (left.empty()) return {};
        if (std::chrono::steady_clock::now() >= give_up) {
            std::ostringstream os;
            detail::write_grouped(os, left);
            os << left.size() << " goroutine(s) leaked\n";
            return os.str();
        }
        pause(step);
        step = std::min(step * 2, std::chrono::milliseconds(100));
    }
}

void expect_no_leaks(const std::vector<goroutine_id>& baseline, std::chrono::milliseconds grace) {
    std::string leaks = find_leaks(baseline, grace);
    if (!leaks.empty())
        throw leak_error("goro::testing::expect_no_leaks: found leaked goroutines\n" + leaks);
}

}  // namespace goro::testing
