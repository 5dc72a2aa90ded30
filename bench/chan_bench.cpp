// Channel, select and timer microbenchmarks, each the same workload as the Go
// program in bench/go (see docs/performance.md). Default worker count
// (GORO_MAXPROCS or the hardware), like Go's GOMAXPROCS default.
#include <benchmark/benchmark.h>

#include <vector>

#include "goro/goro.hpp"

namespace {

benchmark::Counter per_item(double items) {
    return benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Unbuffered ping-pong: one round trip per iteration.
void BM_PingPong(benchmark::State& state) {
    goro::run([&] {
        auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] {
            for (int v : ping) pong.send(v);
        });
        for (auto _ : state) {
            ping.send(1);
            benchmark::DoNotOptimize(pong.recv());
        }
        ping.close();
        wg.wait();
    });
}
BENCHMARK(BM_PingPong)->UseRealTime();

// Producers x consumers over one buffered channel of capacity 128.
void pipe(benchmark::State& state, int producers, int consumers) {
    const long batch = 100000;
    goro::run([&] {
        for (auto _ : state) {
            auto ch = goro::make_chan<long>(128);
            goro::wait_group prod, cons;
            for (int p = 0; p < producers; ++p)
                prod.go([&, p] {
                    for (long i = p; i < batch; i += producers) ch.send(i);
                });
            std::vector<long> sums(consumers);
            for (int c = 0; c < consumers; ++c)
                cons.go([&, c] {
                    long s = 0;
                    for (long v : ch) s += v;
                    sums[c] = s;
                });
            prod.wait();
            ch.close();
            cons.wait();
            long total = 0;
            for (long s : sums) total += s;
            if (total != batch * (batch - 1) / 2) state.SkipWithError("lost items");
        }
    });
    state.counters["per_item"] = per_item(double(state.iterations()) * batch);
}
void BM_Spsc(benchmark::State& state) {
    pipe(state, 1, 1);
}
void BM_Mpmc4x4(benchmark::State& state) {
    pipe(state, 4, 4);
}
BENCHMARK(BM_Spsc)->UseRealTime();
BENCHMARK(BM_Mpmc4x4)->UseRealTime();

// One goroutine selecting over n unbuffered channels, each fed by its own
// producer goroutine: ns per select.
void select_n(benchmark::State& state, int n) {
    goro::run([&] {
        std::vector<goro::chan<int>> chans;
        for (int i = 0; i < n; ++i) chans.push_back(goro::make_chan<int>());
        auto stop = goro::make_chan<goro::unit>();
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                for (;;) {
                    bool done = false;
                    goro::select(goro::send_case(chans[i], i),
                                 goro::recv_case(stop, [&](auto) { done = true; }));
                    if (done) return;
                }
            });
        long sum = 0;
        if (n == 2) {
            for (auto _ : state)
                goro::select(goro::recv_case(chans[0], [&](auto v) { sum += *v; }),
                             goro::recv_case(chans[1], [&](auto v) { sum += *v; }));
        } else {
            std::vector<goro::select_case<int>> cases;
            for (auto& c : chans) cases.push_back(goro::select_case<int>::recv(c));
            for (auto _ : state) sum += *cases[goro::select(cases)].value();
        }
        benchmark::DoNotOptimize(sum);
        stop.close();
        wg.wait();
    });
}
void BM_Select2(benchmark::State& state) {
    select_n(state, 2);
}
void BM_Select8(benchmark::State& state) {
    select_n(state, 8);
}
BENCHMARK(BM_Select2)->UseRealTime();
BENCHMARK(BM_Select8)->UseRealTime();

// time.NewTimer(1h) + Stop.
void BM_TimerCreateStop(benchmark::State& state) {
    goro::run([&] {
        for (auto _ : state) {
            goro::timer t(std::chrono::hours(1));
            benchmark::DoNotOptimize(t.stop());
        }
    });
}
BENCHMARK(BM_TimerCreateStop)->UseRealTime();

}  // namespace
