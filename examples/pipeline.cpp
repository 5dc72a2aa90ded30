// pipeline: Go's "pipelines and cancellation" pattern in goro. A generator
// feeds numbers into a channel, three workers square them (fan-out), merge()
// gathers their results into one channel (fan-in). The consumer stops early
// by cancelling a context; every stage watches ctx.done() in its select, so
// all the goroutines exit instead of blocking forever on a send.
#include <cstdio>
#include <vector>

#include "goro/goro.hpp"

namespace {

// Sends 1..n on the returned channel, then closes it.
goro::recv_chan<long> generate(goro::context ctx, long n) {
    auto out = goro::make_chan<long>();
    goro::go([ctx, out, n] {
        for (long i = 1; i <= n; ++i) {
            // Either the value is taken, or the pipeline was cancelled.
            if (goro::select(goro::send_case(out, i), goro::recv_case(ctx.done())) == 1) break;
        }
        out.close();
    });
    return out;
}

// Squares every value from in until in is closed or ctx is cancelled.
goro::recv_chan<long> square(goro::context ctx, goro::recv_chan<long> in) {
    auto out = goro::make_chan<long>();
    goro::go([ctx, in, out] {
        for (long v : in) {
            if (goro::select(goro::send_case(out, v * v), goro::recv_case(ctx.done())) == 1) break;
        }
        out.close();
    });
    return out;
}

// Fan-in: one channel carrying every value of every input; closed when all
// inputs are closed (a wait_group counts the forwarding goroutines).
goro::recv_chan<long> merge(goro::context ctx, std::vector<goro::recv_chan<long>> inputs) {
    auto out = goro::make_chan<long>();
    auto wg = std::make_shared<goro::wait_group>();
    for (auto& in : inputs)
        wg->go([ctx, in, out] {
            for (long v : in)
                if (goro::select(goro::send_case(out, v), goro::recv_case(ctx.done())) == 1) return;
        });
    goro::go([wg, out] {
        wg->wait();
        out.close();
    });
    return out;
}

}  // namespace

int main() {
    return goro::run([] {
        // Whole run: sum of squares of 1..1000.
        {
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            auto source = generate(ctx, 1000);
            auto results =
                merge(ctx, {square(ctx, source), square(ctx, source), square(ctx, source)});
            long sum = 0;
            for (long v : results) sum += v;
            cancel();
            std::printf("sum of squares of 1..1000 = %ld\n", sum);
            if (sum != 333833500) return 1;
        }
        // Early exit: take five results, then cancel; the stages unwind.
        {
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            auto source = generate(ctx, 1'000'000);
            auto results =
                merge(ctx, {square(ctx, source), square(ctx, source), square(ctx, source)});
            for (int i = 0; i < 5; ++i) std::printf("got %ld\n", *results.recv());
            cancel();
            // Drain until merge closes: proof that every stage noticed.
            long leftover = 0;
            for (long v : results) leftover += v != 0;
            std::printf("cancelled after 5 results (%ld more were in flight)\n", leftover);
        }
        // Only this goroutine is left; give exiting goroutines a moment.
        for (int i = 0; i < 1000 && goro::num_goroutines() > 1; ++i)
            goro::sleep_for(std::chrono::milliseconds(1));
        std::printf("goroutines still running: %zu\n", goro::num_goroutines());
        return goro::num_goroutines() == 1 ? 0 : 1;
    });
}
