// errgroup_fetch: fetch many URLs in parallel, at most 3 at a time, and stop
// everything at the first error — golang.org/x/sync/errgroup's canonical use.
//
// fetch() is simulated: it "downloads" for the URL's latency unless its
// context is cancelled first. Tasks return std::error_code (the group treats
// a non-zero one as a failure; returning anything else would not compile).
// Each task writes its own slot of the results vector, so no lock is needed,
// and the errgroup's wait gives the happens-before that makes the slots
// readable afterwards.
//
// Round 1: every fetch succeeds; set_limit(3) keeps at most 3 in flight.
// Round 2: one URL fails after 5 ms; the group's context is cancelled at
// once, the fetches in flight give up, the loop stops starting new ones,
// and wait_error() returns the first failure without throwing.
//
// Checked: round 1 fetched every URL with never more than 3 in flight;
// round 2 reported the failing URL's error, and no other fetch completed
// (they were all cancelled or never started).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

struct site {
    std::string url;
    goro::clock::duration latency;
    bool broken = false;
};

std::atomic<int> in_flight{0}, max_in_flight{0};

// Simulated HTTP GET: the page's size, or why not.
std::error_code fetch(const goro::context& ctx, const site& s, std::size_t& bytes) {
    const int now = in_flight.fetch_add(1) + 1;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    struct leave {
        ~leave() { in_flight.fetch_sub(1); }
    } guard;

    const std::size_t i =
        goro::select(goro::recv_case(goro::after(s.latency)), goro::recv_case(ctx.done()));
    if (i == 1) return ctx.err();  // cancelled: give up
    if (s.broken) return std::make_error_code(std::errc::host_unreachable);
    bytes = 1000 + s.url.size();
    return {};
}

}  // namespace

int main() {
    return goro::run([] {
        int failures = 0;

        // Round 1: twelve healthy sites, at most 3 fetches at once.
        {
            std::vector<site> sites;
            for (int i = 0; i < 12; ++i)
                sites.push_back(
                    {"https://example.com/page/" + std::to_string(i), 1ms * (1 + i % 4)});
            std::vector<std::size_t> sizes(sites.size(), 0);
            auto [group, ctx] = goro::errgroup::with_context(goro::background());
            group.set_limit(3);
            for (std::size_t i = 0; i < sites.size(); ++i)
                group.go([&, i, ctx = ctx] { return fetch(ctx, sites[i], sizes[i]); });
            const goro::errgroup::failure err = group.wait_error();
            const auto fetched =
                std::count_if(sizes.begin(), sizes.end(), [](std::size_t n) { return n > 0; });
            std::printf("round 1: %s, %ld/%zu pages fetched, at most %d in flight (limit 3)\n",
                        err ? err.message().c_str() : "no error", static_cast<long>(fetched),
                        sites.size(), max_in_flight.load());
            if (err || fetched != static_cast<long>(sites.size()) || max_in_flight.load() > 3)
                ++failures;
        }

        // Round 2: the second site is down; the others are slow (10 s), so
        // none of them can finish before the failure cancels them.
        {
            std::vector<site> sites;
            for (int i = 0; i < 12; ++i)
                sites.push_back({"https://slow.example.com/" + std::to_string(i), 10s});
            sites[1] = {"https://down.example.com/", 5ms, true};
            std::vector<std::size_t> sizes(sites.size(), 0);
            std::atomic<int> cancelled{0};
            int started = 0;

            auto [group, ctx] = goro::errgroup::with_context(goro::background());
            group.set_limit(3);
            for (std::size_t i = 0; i < sites.size(); ++i) {
                if (ctx.err()) break;  // the group already failed: start no more
                ++started;
                group.go([&, i, ctx = ctx] {
                    std::error_code ec = fetch(ctx, sites[i], sizes[i]);
                    if (ec == goro::errc::canceled) cancelled.fetch_add(1);
                    return ec;
                });
            }
            const goro::errgroup::failure err = group.wait_error();
            const auto fetched =
                std::count_if(sizes.begin(), sizes.end(), [](std::size_t n) { return n > 0; });
            std::printf(
                "round 2: first error \"%s\"; %d of %zu fetches started, %d cancelled, %ld "
                "completed\n",
                err.message().c_str(), started, sites.size(), cancelled.load(),
                static_cast<long>(fetched));
            if (!(err == std::make_error_code(std::errc::host_unreachable)) || fetched != 0 ||
                cancelled.load() != started - 1 || ctx.err() != goro::errc::canceled)
                ++failures;
        }

        std::printf("errgroup fetch: %s\n", failures == 0 ? "all checks passed" : "FAILED");
        return failures;
    });
}
