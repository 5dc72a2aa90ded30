// The consumer program every install check builds: goroutines run, and the
// installed goro/version.hpp names the version that was built.
#include <goro/goro.hpp>
#include <goro/version.hpp>

#include <atomic>
#include <cstdio>

static_assert(GORO_VERSION ==
              GORO_VERSION_MAJOR * 10000 + GORO_VERSION_MINOR * 100 + GORO_VERSION_PATCH);

int main() {
    return goro::run([] {
        std::atomic<int> n{0};
        goro::wait_group wg;
        for (int i = 0; i < 100; ++i) wg.go([&] { n.fetch_add(1); });
        wg.wait();
        std::printf("consumer: goro %s, %d goroutines ran\n", GORO_VERSION_STRING, n.load());
        return n.load() == 100 ? 0 : 1;
    });
}
