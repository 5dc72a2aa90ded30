// job_graph: run a graph of dependent jobs (a small build) in parallel, at
// most 2 at a time, each as soon as its dependencies are done.
//
// Every job gets a goroutine in an errgroup and a "done" channel. A job
// waits for each dependency by receiving from its done channel — closing a
// channel wakes every receiver, so one close() releases all dependents at
// once — then takes one of 2 slots from a goro::semaphore, works, and
// closes its own done channel. The waits select on the group's context
// too, so when a job fails, the jobs waiting on it (and on anything else)
// give up instead of waiting forever, and running jobs are cancelled.
//
// Round 1: the whole graph succeeds.
// Round 2: compile_b throws; wait_error() returns its exception.
//
// Checked: round 1 ran every job once, each after all its dependencies had
// finished, never more than 2 at once; in round 2 the failure was reported
// and nothing that depends on compile_b (link, test, package) ran.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

struct job {
    std::string name;
    std::vector<std::string> deps;
    bool fails = false;
};

// What happened to each job, by name (each goroutine writes only its own).
struct record {
    int started = -1, finished = -1;  // positions in one global sequence
};

struct outcome {
    goro::errgroup::failure err;
    std::map<std::string, record> runs;
    int max_running = 0;
};

outcome run_graph(const std::vector<job>& jobs, int limit) {
    std::map<std::string, goro::chan<goro::unit>> done;  // closed when the job finished
    outcome out;
    for (const job& j : jobs) {
        done[j.name] = goro::make_chan<goro::unit>();
        out.runs[j.name];  // every slot exists before the goroutines start
    }
    std::atomic<int> seq{0}, running{0}, max_running{0};
    goro::semaphore slots(limit);

    auto [group, ctx] = goro::errgroup::with_context(goro::background());
    for (const job& j : jobs) {
        record& rec = out.runs.at(j.name);
        group.go([&, &j = j, &rec = rec, ctx = ctx]() -> std::error_code {
            for (const std::string& dep : j.deps)
                if (goro::select(goro::recv_case(done.at(dep)), goro::recv_case(ctx.done())) == 1)
                    return {};                     // the build failed elsewhere: skip
            if (slots.acquire(ctx, 1)) return {};  // failed while waiting for a slot
            rec.started = seq.fetch_add(1);
            const int now = running.fetch_add(1) + 1;
            for (int m = max_running.load();
                 now > m && !max_running.compare_exchange_weak(m, now);) {
            }
            struct leave {  // give the slot back however the job ends
                std::atomic<int>& running;
                goro::semaphore& slots;
                ~leave() {
                    running.fetch_sub(1);
                    slots.release(1);
                }
            } guard{running, slots};

            // The work: 5 ms, unless the build is cancelled meanwhile.
            if (goro::select(goro::recv_case(goro::after(5ms)), goro::recv_case(ctx.done())) == 1)
                return {};
            if (j.fails) throw std::runtime_error(j.name + ": syntax error");
            rec.finished = seq.fetch_add(1);
            done.at(j.name).close();  // releases every dependent at once
            return {};
        });
    }
    out.err = group.wait_error();
    out.max_running = max_running.load();
    return out;
}

std::vector<job> build_graph() {
    return {
        {"fetch_deps", {}},
        {"gen_headers", {"fetch_deps"}},
        {"compile_a", {"gen_headers"}},
        {"compile_b", {"gen_headers"}},
        {"compile_c", {"gen_headers"}},
        {"compile_d", {"fetch_deps"}},
        {"link", {"compile_a", "compile_b", "compile_c", "compile_d"}},
        {"test", {"link"}},
        {"docs", {"gen_headers"}},
        {"package", {"test", "docs"}},
    };
}

}  // namespace

int main() {
    return goro::run([] {
        int failures = 0;

        // Round 1: everything succeeds.
        {
            const std::vector<job> jobs = build_graph();
            const outcome out = run_graph(jobs, 2);
            bool ordered = true;
            int ran = 0;
            for (const job& j : jobs) {
                const record& r = out.runs.at(j.name);
                ran += r.finished >= 0;
                for (const std::string& dep : j.deps)
                    if (!(out.runs.at(dep).finished >= 0 && out.runs.at(dep).finished < r.started))
                        ordered = false;
                std::printf("  %-12s started #%-2d finished #%d\n", j.name.c_str(), r.started,
                            r.finished);
            }
            std::printf("round 1: %d/%zu jobs ran, dependencies %s, at most %d at once (limit 2)\n",
                        ran, jobs.size(), ordered ? "respected" : "VIOLATED", out.max_running);
            if (out.err || ran != static_cast<int>(jobs.size()) || !ordered || out.max_running > 2)
                ++failures;
        }

        // Round 2: compile_b fails.
        {
            std::vector<job> jobs = build_graph();
            jobs[3].fails = true;
            const outcome out = run_graph(jobs, 2);
            int downstream_started = 0;
            for (const char* name : {"link", "test", "package"})
                downstream_started += out.runs.at(name).started >= 0;
            std::printf("round 2: first failure \"%s\"; jobs after it started: %d\n",
                        out.err.message().c_str(), downstream_started);
            if (out.err.message() != "compile_b: syntax error" || downstream_started != 0)
                ++failures;
        }

        std::printf("job graph: %s\n", failures == 0 ? "all checks passed" : "FAILED");
        return failures;
    });
}
