// Scheduler microbenchmarks: spawn+join, yield (Gosched), and a bare stack
// switch. Each case runs inside goro::run with the default number of
// workers (GORO_MAXPROCS or the hardware), like Go's GOMAXPROCS default.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>

#include "fibers/context_switch.hpp"
#include "goro/goro.hpp"

namespace {

// GORO_BENCH_TRACE=<file>: every benchmark of this run traced into <file>
// (the cost of tracing, docs/performance.md; /dev/null works).
struct trace_all {
    trace_all() {
        if (const char* path = std::getenv("GORO_BENCH_TRACE")) goro::trace::start(path);
    }
    ~trace_all() {
        if (goro::trace::running()) goro::trace::stop();
    }
} trace_all_benchmarks;

benchmark::Counter per_item(double items) {
    return benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// go + wg.Done for each of `batch` goroutines, then one wait: Go's
// `for i := 0; i < n; i++ { wg.Add(1); go func() { wg.Done() }() }; wg.Wait()`.
void BM_Spawn(benchmark::State& state) {
    const int batch = 1000;
    goro::run([&] {
        goro::wait_group wg;
        for (auto _ : state) {
            for (int i = 0; i < batch; ++i) {
                wg.add(1);
                goro::go([&wg] { wg.done(); });
            }
            wg.wait();
        }
    });
    state.counters["per_goroutine"] = per_item(double(state.iterations()) * batch);
}
BENCHMARK(BM_Spawn)->UseRealTime();

// runtime.Gosched in a loop, one goroutine.
void BM_Yield(benchmark::State& state) {
    goro::run([&] {
        for (auto _ : state) goro::yield();
    });
}
BENCHMARK(BM_Yield)->UseRealTime();

// Two goroutines yielding to each other on one worker.
void BM_Yield2(benchmark::State& state) {
    goro::options o;
    o.procs = 1;
    goro::run(o, [&] {
        std::atomic<bool> stop{false};
        goro::wait_group wg;
        wg.go([&] {
            while (!stop.load(std::memory_order_relaxed)) goro::yield();
        });
        for (auto _ : state) goro::yield();
        stop = true;
        wg.wait();
    });
    state.counters["per_yield"] = per_item(double(state.iterations()) * 2);
}
BENCHMARK(BM_Yield2)->UseRealTime();

// The raw cost of one stack switch (there and back = 2 switches), without
// the scheduler: the floor under every park and yield.
namespace raw {
goro::detail::fiber_context main_ctx, fib_ctx;
void body(void*) {
    for (;;) goro::detail::switch_to(fib_ctx, main_ctx, nullptr);
}
}  // namespace raw

void BM_ContextSwitch(benchmark::State& state) {
    static char stack[64 << 10];
    auto lo = reinterpret_cast<std::uintptr_t>(stack);
    goro::detail::init_thread_fiber(raw::main_ctx);
    goro::detail::make_fiber(raw::fib_ctx, lo, lo + sizeof stack, &raw::body);
    for (auto _ : state) goro::detail::switch_to(raw::main_ctx, raw::fib_ctx, nullptr);
    state.counters["per_switch"] = per_item(double(state.iterations()) * 2);
}
BENCHMARK(BM_ContextSwitch);

}  // namespace
