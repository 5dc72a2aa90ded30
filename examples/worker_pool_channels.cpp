// worker_pool_channels: Go by Example's worker pool — a fixed number of
// workers, a channel of jobs and a channel of results, and nothing else.
//
// main sends 100 jobs on a buffered `jobs` channel and closes it; each of 4
// workers ranges over `jobs` (the loop ends when the channel is closed and
// drained) and sends a result per job. Workers hold a send_chan for results
// and a recv_chan for jobs, so the types say which way data flows. A
// wait_group closes `results` once every worker has returned, so main can
// range over results too. (worker_pool.cpp does the same job with an
// errgroup, a limit and cancellation.)
//
// Checked: 100 results, one per job, each the job's number doubled.
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "goro/goro.hpp"

namespace {

struct result {
    int job;
    int value;
    int worker;
};

void worker(int id, goro::recv_chan<int> jobs, goro::send_chan<result> results) {
    for (int job : jobs) {
        goro::yield();  // as if working: lets the other workers take jobs
        results.send({job, job * 2, id});
    }
}

}  // namespace

int main() {
    return goro::run([] {
        constexpr int num_jobs = 100, num_workers = 4;
        auto jobs = goro::make_chan<int>(num_jobs);
        auto results = goro::make_chan<result>(num_jobs);

        auto workers = std::make_shared<goro::wait_group>();
        for (int w = 1; w <= num_workers; ++w)
            workers->go([w, jobs, results] { worker(w, jobs, results); });
        goro::go([workers, results] {  // closes results after the last worker
            workers->wait();
            results.close();
        });

        for (int j = 1; j <= num_jobs; ++j) jobs.send(j);
        jobs.close();

        std::vector<bool> seen(num_jobs + 1, false);
        std::map<int, int> per_worker;
        int count = 0;
        bool correct = true;
        for (const result& r : results) {
            ++count;
            correct = correct && r.value == 2 * r.job && !seen[static_cast<std::size_t>(r.job)];
            seen[static_cast<std::size_t>(r.job)] = true;
            ++per_worker[r.worker];
        }
        for (const auto& [w, n] : per_worker) std::printf("worker %d did %d jobs\n", w, n);
        std::printf("worker pool: %d results from %zu workers, %s\n", count, per_worker.size(),
                    correct ? "each job done once, correctly" : "WRONG RESULTS");
        return count == num_jobs && correct ? 0 : 1;
    });
}
