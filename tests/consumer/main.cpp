#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>

int main() {
    return goro::run([] {
        std::atomic<int> n{0};
        goro::wait_group wg;
        for (int i = 0; i < 100; ++i) wg.go([&] { n.fetch_add(1); });
        wg.wait();
        std::printf("consumer: %d goroutines ran\n", n.load());
        return n.load() == 100 ? 0 : 1;
    });
}
