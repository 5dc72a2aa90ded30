// skynet: one million goroutines (github.com/atemerev/skynet).
//
// A root goroutine starts 10 children, each starts 10, and so on for six
// levels: 1,111,111 goroutines, of which the 1,000,000 leaves each send
// their own number up a channel and every inner goroutine sends the sum of
// its ten children's. The answer is 0 + 1 + ... + 999,999 = 499,999,500,000.
// Goroutines are cheap enough for this to take about a second
// (docs/performance.md): each is a small record at the top of a stack slot
// whose memory is committed only as it is touched, and slots are reused as
// goroutines end.
//
// Under AddressSanitizer or ThreadSanitizer (which shadow every stack and
// every channel operation) the tree is scaled down to 10,000 leaves, so the
// example stays quick there. `example_skynet <leaves>` picks another size
// (a power of ten); `example_skynet --trace trace.json [leaves]` also
// records an execution trace of the run (goro::trace; open the file in
// tools/trace_viewer.html or ui.perfetto.dev).
//
// Checked: the sum is 0 + 1 + ... + (leaves - 1).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/goro.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SKYNET_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SKYNET_SANITIZED 1
#endif
#endif

namespace {

#ifdef SKYNET_SANITIZED
constexpr long default_leaves = 10'000;
#else
constexpr long default_leaves = 1'000'000;
#endif

// Sends the sum of num .. num + size - 1 on out, computed by a tree of
// goroutines with `div` children per node.
void skynet(goro::send_chan<long> out, long num, long size, long div) {
    if (size == 1) {
        out.send(num);
        return;
    }
    auto sums = goro::make_chan<long>(static_cast<std::size_t>(div));  // children never wait
    for (long i = 0; i < div; ++i)
        goro::go(skynet, goro::send_chan<long>(sums), num + i * (size / div), size / div, div);
    long total = 0;
    for (long i = 0; i < div; ++i) total += *sums.recv();
    out.send(total);
}

}  // namespace

int main(int argc, char** argv) {
    const char* trace_path = nullptr;
    if (argc > 2 && std::strcmp(argv[1], "--trace") == 0) {
        trace_path = argv[2];
        argc -= 2;
        argv += 2;
    }
    const long leaves = argc > 1 ? std::atol(argv[1]) : default_leaves;
    if (leaves < 1) {
        std::fprintf(stderr,
                     "usage: example_skynet [--trace file.json] [leaves, a power of ten]\n");
        return 2;
    }
    if (trace_path) goro::trace::start(trace_path);
    const int rc = goro::run([leaves] {
        const auto t0 = std::chrono::steady_clock::now();
        auto result = goro::make_chan<long>(1);
        goro::go(skynet, goro::send_chan<long>(result), 0L, leaves, 10L);
        const long sum = *result.recv();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
        const long want = leaves * (leaves - 1) / 2;
        std::printf("skynet: %ld leaves on %u workers, sum %ld (want %ld) in %lld ms\n", leaves,
                    goro::maxprocs(), sum, want, static_cast<long long>(ms));
        return sum == want ? 0 : 1;
    });
    if (trace_path) goro::trace::stop();
    return rc;
}
