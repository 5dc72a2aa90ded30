// Deliberate bugs in goroutines that the sanitizer must still report in a
// program over an uninstrumented goro (tests/sanitizer_consumer/check.sh):
// goro's announcements (src/sanitizers/hooks.hpp) add happens-before edges
// only where goro really hands something over, so they must not hide a race
// between goroutines that never synchronize with each other.
//
//   bug race   two goroutines increment one int without synchronization, each
//              busy with channel operations of its own (TSan: data race)
//   bug uaf    a goroutine reads a heap int it freed, after a park (ASan:
//              heap-use-after-free)
#include <goro/goro.hpp>

#include <cstdio>
#include <cstring>

namespace {

int unsynchronized = 0;

int race() {
    goro::options opts;
    opts.procs = 4;
    return goro::run(opts, [] {
        // Both goroutines exist before either increments: one that finished
        // before the other was spawned would hand its stack slot, and with
        // it its history, to the other (a reused slot orders the old
        // goroutine before the new one), and the race was missed once so.
        // The start signal orders main before each, not one before the other.
        auto ready = goro::make_chan<int>(2);
        auto start = goro::make_chan<int>();
        goro::wait_group wg;
        for (int g = 0; g < 2; ++g)
            wg.go([ready, start] {
                ready.send(0);
                start.recv();
                auto own = goro::make_chan<int>(1);
                for (int i = 0; i < 2000; ++i) {
                    own.send(i);
                    own.recv();
                    ++unsynchronized;  // the race
                    if (i % 64 == 0) goro::yield();
                }
            });
        ready.recv();
        ready.recv();
        start.close();
        wg.wait();
        std::printf("bug: race ran, counter %d\n", unsynchronized);
        return 0;
    });
}

int use_after_free() {
    return goro::run([] {
        int* p = new int(42);
        auto ch = goro::make_chan<int*>();
        goro::go([&] { ch.send(p); });
        int* q = *ch.recv();
        delete q;
        goro::sleep_for(std::chrono::milliseconds(1));  // park: resume maybe elsewhere
        volatile int v = *q;                            // the bug
        std::printf("bug: read %d after free\n", v);
        return 0;
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "race") == 0) return race();
    if (argc > 1 && std::strcmp(argv[1], "uaf") == 0) return use_after_free();
    std::fprintf(stderr, "usage: bug race|uaf\n");
    return 2;
}
