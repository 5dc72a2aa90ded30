// fan_in: fan-out over one channel, fan-in over N channels with the dynamic
// select.
//
// A dispatcher puts 1..1000 on one `jobs` channel; N workers share it
// (fan-out: whichever worker is free takes the next job) and each sends its
// results on a channel of its own. The collector fans the N result channels
// back in with goro::select over a std::vector of select_case — Go's
// reflect.Select, for a number of channels known only at run time. When a
// worker's channel is closed, its case is replaced by a receive on the nil
// channel, which is never ready (Go's trick of setting a closed channel
// variable to nil). A std::map keyed by channel names each input.
//
// Checked: the results sum to the sum of the squares of 1..1000, every job
// was done exactly once, and every worker's channel was seen closed.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "goro/goro.hpp"

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

        // Fan-in: one dynamic select over every input still open.
        std::vector<goro::select_case<long>> cases;
        for (auto& in : inputs) cases.push_back(goro::select_case<long>::recv(in));
        std::map<std::string, long> per_worker;
        long sum = 0, received = 0;
        for (int open = workers; open > 0;) {
            const std::size_t i = goro::select(cases);
            if (const std::optional<long>& v = cases[i].value()) {
                sum += *v;
                ++received;
                ++per_worker[name.at(inputs[i])];
            } else {  // closed: never select it again
                cases[i] = goro::select_case<long>::recv(goro::recv_chan<long>());
                --open;
            }
        }

        for (const auto& [who, n] : per_worker) std::printf("%s did %ld jobs\n", who.c_str(), n);
        const long want = jobs_total * (jobs_total + 1) * (2 * jobs_total + 1) / 6;
        std::printf("fan-in of %d workers: %ld results, sum of squares = %ld (want %ld)\n", workers,
                    received, sum, want);
        return received == jobs_total && sum == want ? 0 : 1;
    });
}
