// Mutex benchmarks (uncontended and contended lock/unlock); bench/go runs
// the same workloads in Go (bench/compare.sh puts them side by side).
#include <benchmark/benchmark.h>

#include <mutex>

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

}  // namespace
