// skynet, small: a 10-ary tree of goroutines; each leaf sends its number,
// each inner node sums its ten children over a channel. With a file name it
// records an execution trace of the whole run (goro::trace; open the file in
// tools/trace_viewer.html or ui.perfetto.dev).
// Usage: example_skynet [trace.json [leaves]]   (leaves: a power of 10, default 10000)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "goro/goro.hpp"

namespace {

void skynet(goro::send_chan<long> out, long num, long size) {
    if (size == 1) {
        out.send(num);
        return;
    }
    auto ch = goro::make_chan<long>(10);
    for (long i = 0; i < 10; ++i) {
        const long sub = num + i * (size / 10);
        goro::go([ch, sub, size] { skynet(ch, sub, size / 10); });
    }
    long sum = 0;
    for (long i = 0; i < 10; ++i) sum += *ch.recv();
    out.send(sum);
}

}  // namespace

int main(int argc, char** argv) {
    const char* trace_path = argc > 1 ? argv[1] : nullptr;
    const long leaves = argc > 2 ? std::atol(argv[2]) : 10000;
    if (trace_path) goro::trace::start(trace_path);
    const long sum = goro::run([leaves] {
        auto ch = goro::make_chan<long>(1);
        goro::go([ch, leaves] { skynet(ch, 0, leaves); });
        return *ch.recv();
    });
    if (trace_path) goro::trace::stop();
    const long want = leaves * (leaves - 1) / 2;
    std::printf("skynet %ld leaves: sum %ld%s\n", leaves, sum, sum == want ? "" : " (wrong)");
    return sum == want ? 0 : 1;
}
