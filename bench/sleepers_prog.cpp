// 100,000 goroutines each sleeping 10 ms: wall time from the first spawn
// until all have woken. Usage: bench_sleepers [runs]   (default 5)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "goro/goro.hpp"

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
    return goro::run([runs] {
        std::vector<double> ms;
        for (int r = 0; r < runs; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            goro::wait_group wg;
            for (int i = 0; i < 100000; ++i)
                wg.go([] { goro::sleep_for(std::chrono::milliseconds(10)); });
            wg.wait();
            ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
            std::printf("goro sleepers 100k x 10ms: %.1f ms\n", ms.back());
        }
        std::sort(ms.begin(), ms.end());
        std::printf("goro sleepers median %.1f ms\n", ms[ms.size() / 2]);
        return 0;
    });
}
