// hello_goroutines: a fan-out of goroutines joined by a wait_group, the
// smallest complete goro program.
#include <atomic>
#include <chrono>
#include <cstdio>

#include "goro/goro.hpp"

int main() {
    return goro::run([] {
        std::atomic<long> sum{0};
        goro::wait_group wg;
        for (int i = 1; i <= 1000; ++i)
            wg.go([i, &sum] {
                goro::sleep_for(
                    std::chrono::milliseconds(i % 10));  // parks; the worker runs others
                sum.fetch_add(i);
            });
        wg.wait();
        std::printf("1000 goroutines on %u workers summed 1..1000 = %ld\n", goro::maxprocs(),
                    sum.load());
        return sum.load() == 500500 ? 0 : 1;
    });
}
