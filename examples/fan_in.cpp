// fan_in: fan-out over one channel, fan-in over N channels with a mixed
// select.
//
// A dispatcher puts 1..1000 on one `jobs` channel; N workers share it
// (fan-out: whichever worker is free takes the next job) and each sends its
// results on a channel of its own. The collector fans the N result channels
// back in with ONE goro::select over goro::recv_any(inputs) — a
// std::vector of channels whose size is known only at run time — beside
// cases of other element types: the done() channel of a context with a
// timeout (a hang guard) and a progress ticker's channel. The handler is
// told which input fired. When a worker's channel is closed, its element is
// replaced by the nil channel, which is never ready (Go's trick of setting
// a closed channel variable to nil). A std::map keyed by channel names each
// input.
//
// Checked: the results sum to the sum of the squares of 1..1000, every job
// was done exactly once, and every worker's channel was seen closed.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int workers = 4;
constexpr long jobs_total = 1000;

// A worker: squares every job it takes until `jobs` is closed, then closes
// its own result channel.
goro::recv_chan<long> start_worker(goro::recv_chan<long> jobs) {
    auto results = goro::make_chan<long>(8);
    goro::go([jobs, results] {
        for (long job : jobs) results.send(job * job);
        results.close();
    });
    return results;
}

}  // namespace

int main() {
    return goro::run([] {
        auto jobs = goro::make_chan<long>(16);
        goro::go([jobs] {  // the dispatcher
            for (long i = 1; i <= jobs_total; ++i) jobs.send(i);
            jobs.close();  // workers' range-for loops end once it is drained
        });

        std::vector<goro::recv_chan<long>> inputs;
        std::map<goro::recv_chan<long>, std::string> name;  // channels are map keys
        for (int w = 0; w < workers; ++w) {
            inputs.push_back(start_worker(jobs));
            name[inputs.back()] = "worker " + std::to_string(w);
        }

        // Fan-in: one select over every input still open, the deadline and
        // a progress ticker.
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 30s);
        goro::ticker progress(1ms);
        std::map<std::string, long> per_worker;
        long sum = 0, received = 0, reports = 0;
        bool timed_out = false;
        for (int open = workers; open > 0 && !timed_out;) {
            goro::select(goro::recv_any(inputs,
                                        [&](std::size_t j, std::optional<long> v) {
                                            if (!v) {  // closed: never select it again
                                                inputs[j] = {};
                                                --open;
                                                return;
                                            }
                                            sum += *v;
                                            ++received;
                                            ++per_worker[name.at(inputs[j])];
                                        }),
                         goro::recv_case(ctx.done(), [&](auto) { timed_out = true; }),
                         goro::recv_case(progress.c(), [&](goro::clock::time_point) {
                             if (reports++ < 3) std::printf("  %ld results so far\n", received);
                         }));
        }
        cancel();

        for (const auto& [who, n] : per_worker) std::printf("%s did %ld jobs\n", who.c_str(), n);
        const long want = jobs_total * (jobs_total + 1) * (2 * jobs_total + 1) / 6;
        std::printf("fan-in of %d workers: %ld results, sum of squares = %ld (want %ld)\n", workers,
                    received, sum, want);
        return !timed_out && received == jobs_total && sum == want ? 0 : 1;
    });
}
