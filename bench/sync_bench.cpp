// sync, context and errgroup benchmarks; the Go programs in bench/go run the
// same workloads.
#include <benchmark/benchmark.h>

#include <mutex>
#include <vector>

#include "goro/goro.hpp"

namespace {

benchmark::Counter per_item(double items) {
    return benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_MutexUncontended(benchmark::State& state) {
    goro::run([&] {
        goro::mutex m;
        for (auto _ : state) {
            m.lock();
            m.unlock();
        }
    });
}
BENCHMARK(BM_MutexUncontended)->UseRealTime();

// 2 x maxprocs goroutines hammering one mutex around a tiny critical section.
void BM_MutexContended(benchmark::State& state) {
    const long batch = 200000;
    goro::run([&] {
        const unsigned g = 2 * goro::maxprocs();
        for (auto _ : state) {
            goro::mutex m;
            long counter = 0;
            goro::wait_group wg;
            for (unsigned i = 0; i < g; ++i)
                wg.go([&] {
                    for (long k = 0; k < batch / g; ++k) {
                        std::lock_guard lk(m);
                        ++counter;
                    }
                });
            wg.wait();
            benchmark::DoNotOptimize(counter);
        }
    });
    state.counters["per_lock"] = per_item(double(state.iterations()) * batch);
}
BENCHMARK(BM_MutexContended)->UseRealTime();

// Build a 10-ary tree of 10k cancellable contexts, cancel the root, check
// every leaf's done channel is closed: us per tree.
void BM_ContextTree10k(benchmark::State& state) {
    goro::run([&] {
        for (auto _ : state) {
            auto [root, cancel] = goro::with_cancel(goro::background());
            std::vector<goro::context> level{root}, next;
            for (int d = 0; d < 4; ++d) {  // 10 + 100 + 1000 + 10000 nodes below the root
                next.clear();
                for (auto& c : level)
                    for (int i = 0; i < 10; ++i) next.push_back(goro::with_cancel(c).first);
                level.swap(next);
            }
            cancel();
            for (auto& c : level)
                if (!c.done().recv().has_value() && !c.err()) state.SkipWithError("not cancelled");
        }
    });
}
BENCHMARK(BM_ContextTree10k)->UseRealTime()->Unit(benchmark::kMicrosecond);

// errgroup fan-out of 10k trivial tasks, unlimited and with set_limit(8).
void BM_Errgroup10k(benchmark::State& state) {
    const int limit = static_cast<int>(state.range(0));
    goro::run([&] {
        for (auto _ : state) {
            goro::errgroup g;
            if (limit > 0) g.set_limit(limit);
            for (int i = 0; i < 10000; ++i) g.go([] {});
            g.wait();
        }
    });
}
BENCHMARK(BM_Errgroup10k)->Arg(0)->Arg(8)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
