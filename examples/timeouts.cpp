// timeouts: time in select. A slow call raced against goro::after, a ticker
// driving a heartbeat until a context deadline, and a timer that is stopped
// before it fires — each the way a Go program writes it.
#include <chrono>
#include <cstdio>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

// Answers on its channel after `delay`.
goro::recv_chan<int> slow_answer(goro::clock::duration delay) {
    auto out = goro::make_chan<int>(1);  // buffered: the sender never leaks
    goro::go([out, delay] {
        goro::sleep_for(delay);
        out.send(42);
    });
    return out;
}

}  // namespace

int main() {
    return goro::run([] {
        int failures = 0;

        // 1. Timeout on a call: the answer comes in 50 ms, we wait 5 ms.
        goro::select(
            goro::recv_case(slow_answer(50ms),
                            [&](std::optional<int> v) {
                                std::printf("answer %d (unexpected)\n", *v);
                                ++failures;
                            }),
            goro::recv_case(goro::after(5ms), [](auto) { std::printf("timed out after 5 ms\n"); }));

        // 2. Same call with enough time.
        goro::select(goro::recv_case(slow_answer(1ms),
                                     [](std::optional<int> v) { std::printf("answer %d\n", *v); }),
                     goro::recv_case(goro::after(1s), [&](auto) { ++failures; }));

        // 3. A heartbeat every 10 ms until a 55 ms deadline.
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 55ms);
        goro::ticker heartbeat(10ms);
        int beats = 0;
        for (bool running = true; running;)
            goro::select(goro::recv_case(heartbeat.c(), [&](auto) { ++beats; }),
                         goro::recv_case(ctx.done(), [&](auto) { running = false; }));
        heartbeat.stop();
        cancel();
        std::printf("%d heartbeats before the deadline (%s)\n", beats, ctx.err().message().c_str());
        if (beats < 1 || ctx.err() != goro::errc::deadline_exceeded) ++failures;

        // 4. A timer stopped before it fires: its function never runs.
        bool ran = false;
        goro::timer t = goro::after_func(1h, [&] { ran = true; });
        std::printf("stopped a pending timer: %s\n", t.stop() ? "yes" : "no");
        if (ran) ++failures;

        return failures;
    });
}
