// skynet: one million goroutines in a 10-ary tree; each leaf sends its
// number, each inner node sums its ten children over a channel.
// Usage: bench_skynet [runs]   (default 5; prints each run and the median)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "goro/goro.hpp"

namespace {

void skynet(goro::send_chan<long> out, long num, long size, long div) {
    if (size == 1) {
        out.send(num);
        return;
    }
    auto ch = goro::make_chan<long>(div);
    for (long i = 0; i < div; ++i) {
        long sub = num + i * (size / div);
        goro::go([ch, sub, size, div] { skynet(ch, sub, size / div, div); });
    }
    long sum = 0;
    for (long i = 0; i < div; ++i) sum += *ch.recv();
    out.send(sum);
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
    return goro::run([runs] {
        std::vector<double> ms;
        long result = 0;
        for (int r = 0; r < runs; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            auto ch = goro::make_chan<long>(1);
            goro::go([ch] { skynet(ch, 0, 1000000, 10); });
            result = *ch.recv();
            ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
            std::printf("goro skynet 1M: sum=%ld ms=%.1f\n", result, ms.back());
        }
        std::sort(ms.begin(), ms.end());
        std::printf("goro skynet median %.1f ms\n", ms[ms.size() / 2]);
        return result == 499999500000L ? 0 : 1;
    });
}
