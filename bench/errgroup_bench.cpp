// errgroup benchmarks: fan-out of 10k trivial tasks, with and without a
// limit; bench/go runs the same workloads in Go.
#include <benchmark/benchmark.h>

#include "goro/goro.hpp"

namespace {

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
