// The scheduler's hot paths with a fixed number of iterations on one worker,
// for measuring what the tracer and the counters cost (docs/performance.md,
// "Tracing and counters"): run it natively for time, or under
// `valgrind --tool=callgrind` with N and 2N iterations for instructions.
// Usage: bench_trace_cost [pingpong|yield|yield2|spawn [n [trace.json]]]
//   With a trace file, the workload runs twice, each traced, and both
//   timings are printed (the second with the trace buffers already touched).
//   No arguments: each workload once, untraced.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/goro.hpp"

namespace {

void workload(const char* w, long n) {
    if (!std::strcmp(w, "pingpong")) {
        auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] {
            for (int v : ping) pong.send(v);
        });
        for (long i = 0; i < n; ++i) {
            ping.send(1);
            (void)pong.recv();
        }
        ping.close();
        wg.wait();
    } else if (!std::strcmp(w, "yield")) {
        for (long i = 0; i < n; ++i) goro::yield();
    } else if (!std::strcmp(w, "yield2")) {
        std::atomic<bool> stop{false};
        goro::wait_group wg;
        wg.go([&] {
            while (!stop.load(std::memory_order_relaxed)) goro::yield();
        });
        for (long i = 0; i < n; ++i) goro::yield();
        stop = true;
        wg.wait();
    } else {
        goro::wait_group wg;
        for (long b = 0; b < n / 1000; ++b) {
            for (int i = 0; i < 1000; ++i) {
                wg.add(1);
                goro::go([&wg] { wg.done(); });
            }
            wg.wait();
        }
    }
}

void measure(const char* w, long n, const char* trace) {
    goro::options o;
    o.procs = 1;
    for (int rep = 0; rep < (trace ? 2 : 1); ++rep) {
        if (trace) goro::trace::start(trace);
        goro::run(o, [&] {
            const auto t0 = std::chrono::steady_clock::now();
            workload(w, n);
            const std::chrono::duration<double, std::nano> d =
                std::chrono::steady_clock::now() - t0;
            std::printf("%s %.1f ns/op%s\n", w, d.count() / double(n), trace ? " (traced)" : "");
        });
        if (trace) goro::trace::stop();
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        for (const char* w : {"pingpong", "yield", "yield2", "spawn"}) measure(w, 200000, nullptr);
        return 0;
    }
    measure(argv[1], argc > 2 ? std::atol(argv[2]) : 200000, argc > 3 ? argv[3] : nullptr);
    return 0;
}
