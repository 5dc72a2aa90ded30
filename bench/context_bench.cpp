// Context benchmarks: building a 10k-node tree and cancelling its root;
// bench/go runs the same workload in Go.
#include <benchmark/benchmark.h>

#include <vector>

#include "goro/goro.hpp"

namespace {

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
                if (!c.done().try_recv().closed()) state.SkipWithError("not cancelled");
        }
    });
}
BENCHMARK(BM_ContextTree10k)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A short-lived child of a long-lived parent: with_cancel, then cancel
// (registers with the parent and unregisters again): ns per child.
void BM_ContextChildCancel(benchmark::State& state) {
    auto [parent, cancel_parent] = goro::with_cancel(goro::background());
    for (auto _ : state) {
        auto [child, cancel] = goro::with_cancel(parent);
        cancel();
    }
    cancel_parent();
}
BENCHMARK(BM_ContextChildCancel);

// with_timeout + cancel before the deadline (arms and stops a timer).
void BM_ContextTimeoutCancel(benchmark::State& state) {
    goro::run([&] {
        for (auto _ : state) {
            auto [ctx, cancel] = goro::with_timeout(goro::background(), std::chrono::hours(1));
            cancel();
        }
    });
}
BENCHMARK(BM_ContextTimeoutCancel);

}  // namespace
