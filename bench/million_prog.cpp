// One million goroutines parked at once: proves the stack allocator gets past
// vm.max_map_count, and reports the RSS each parked goroutine costs.
// Usage: bench_million [count]   (default 1000000)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "goro/goro.hpp"

namespace {

long status_kib(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
    return -1;
}

long map_count() {
    std::ifstream f("/proc/self/maps");
    long n = 0;
    std::string line;
    while (std::getline(f, line)) ++n;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    const long n = argc > 1 ? std::atol(argv[1]) : 1000000;
    return goro::run([n] {
        goro::wait_group gate, parked;
        gate.add(1);
        parked.add(n);
        long rss0 = status_kib("VmRSS:"), pte0 = status_kib("VmPTE:");
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < n; ++i)
            goro::go([&] {
                parked.done();
                gate.wait();
            });
        auto t_spawned = std::chrono::steady_clock::now();
        parked.wait();
        auto t1 = std::chrono::steady_clock::now();
        long rss1 = status_kib("VmRSS:"), pte1 = status_kib("VmPTE:");
        std::printf("goro million: %ld goroutines parked at once (%zu live), %ld mappings\n", n,
                    goro::num_goroutines(), map_count());
        std::printf("goro million: spawn loop %.0f ms\n",
                    std::chrono::duration<double, std::milli>(t_spawned - t0).count());
        std::printf("goro million: spawn+park %.0f ms, %.1f ns/goroutine\n",
                    std::chrono::duration<double, std::milli>(t1 - t0).count(),
                    std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n));
        std::printf(
            "goro rss %.0f bytes/goroutine (VmRSS); page tables %.0f bytes/goroutine (VmPTE)\n",
            (rss1 - rss0) * 1024.0 / double(n), (pte1 - pte0) * 1024.0 / double(n));
        gate.done();
        return 0;
    });
}
