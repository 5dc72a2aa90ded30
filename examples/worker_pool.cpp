// worker_pool: a bounded pool with errgroup. Jobs go through an errgroup
// limited to four at a time; each job honours the group's context, so the
// first failure cancels the rest and wait() rethrows it. The second half
// shows the same pool without failures, with a mutex-guarded result map.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

// A job that "works" for a while unless its context is cancelled first.
std::error_code crunch(const goro::context& ctx, int job) {
    const std::size_t i = goro::select(goro::recv_case(goro::after(1ms * (job % 7 + 1))),
                                       goro::recv_case(ctx.done()));
    return i == 0 ? std::error_code{} : ctx.err();
}

}  // namespace

int main() {
    return goro::run([] {
        // A pool of 4 over 40 jobs; job 13 fails.
        {
            auto [group, ctx] = goro::errgroup::with_context(goro::background());
            group.set_limit(4);
            std::atomic<int> finished{0}, cancelled{0};
            for (int job = 0; job < 40; ++job)
                group.go([&, job, ctx = ctx]() -> std::error_code {
                    if (job == 13) throw std::runtime_error("job 13: bad input");
                    std::error_code ec = crunch(ctx, job);
                    (ec ? cancelled : finished).fetch_add(1);
                    return ec;
                });
            try {
                group.wait();
                std::printf("unexpected: no failure\n");
                return 1;
            } catch (const std::exception& e) {
                std::printf("first failure: %s (%d jobs finished, %d cancelled, ctx: %s)\n",
                            e.what(), finished.load(), cancelled.load(),
                            ctx.err().message().c_str());
            }
            if (ctx.err() != goro::errc::canceled) return 1;
        }
        // The same pool, every job succeeds; results under a goro::mutex.
        {
            goro::errgroup group;
            group.set_limit(4);
            goro::mutex mu;
            std::map<int, std::string> results;
            for (int job = 0; job < 40; ++job)
                group.go([&, job] {
                    goro::sleep_for(1ms * (job % 3));
                    std::lock_guard lock(mu);
                    results[job] =
                        "done by goroutine " + std::to_string(goro::this_goroutine::id());
                });
            group.wait();
            std::printf("%zu jobs done; job 0 %s\n", results.size(), results[0].c_str());
            return results.size() == 40 ? 0 : 1;
        }
    });
}
