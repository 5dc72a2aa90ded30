// goro::blocking: what handing a call to the blocking pool and back costs
// (docs/net.md, "Blocking calls").
#include <benchmark/benchmark.h>

#include "goro/goro.hpp"

namespace {

// One goroutine, one empty call at a time: the round trip to a pool thread
// (a queue push, a futex wake of the pool thread, a ready() back).
void BM_BlockingCall(benchmark::State& state) {
    goro::run([&] {
        for (auto _ : state) benchmark::DoNotOptimize(goro::blocking([] { return 1; }));
    });
}
BENCHMARK(BM_BlockingCall)->UseRealTime();

// The same with a context (a shared record and a context after-func per call).
void BM_BlockingCallWithContext(benchmark::State& state) {
    goro::run([&] {
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        for (auto _ : state) benchmark::DoNotOptimize(goro::blocking(ctx, [] { return 1; }));
        cancel();
    });
}
BENCHMARK(BM_BlockingCallWithContext)->UseRealTime();

// 64 goroutines making empty calls at once: throughput of the pool.
void BM_BlockingCall64Callers(benchmark::State& state) {
    const int per_caller = 1000;
    goro::run([&] {
        for (auto _ : state) {
            goro::wait_group wg;
            for (int g = 0; g < 64; ++g)
                wg.go([] {
                    for (int i = 0; i < per_caller; ++i)
                        benchmark::DoNotOptimize(goro::blocking([] { return 1; }));
                });
            wg.wait();
        }
    });
    state.SetItemsProcessed(state.iterations() * 64 * per_caller);
}
BENCHMARK(BM_BlockingCall64Callers)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
