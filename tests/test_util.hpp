// tests/test_util.hpp — helpers shared by goro's tests.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "goro/chan.hpp"
#include "goro/runtime.hpp"
#include "goro/wait_group.hpp"

namespace goro_test {

// True under ASan or TSan: stress tests scale their iteration counts down.
constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

constexpr bool thread_sanitized =
#if defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// n, or n / div under sanitizers.
constexpr long scaled(long n, long div = 10) {
    return sanitized ? (n / div > 0 ? n / div : 1) : n;
}

// This process's resident memory (VmRSS), in KiB; -1 if unreadable.
inline long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

inline goro::options procs(unsigned n) {
    goro::options o;
    o.procs = n;
    return o;
}

// errno read and written afresh, in another function: glibc declares
// __errno_location const, so within one function the compiler may keep
// errno's address across a park, and a goroutine that migrated would then
// use its old thread's errno (the pitfall is in docs/pitfalls.md).
[[gnu::noinline]] inline int read_errno() {
    asm volatile("" ::: "memory");
    return errno;
}
[[gnu::noinline]] inline void write_errno(int v) {
    asm volatile("" ::: "memory");
    errno = v;
}

// A value sent by a goroutine to run()'s main goroutine in a fresh run():
// 42 when that run works (after one that abandoned a spinner, say).
inline int value_through_a_fresh_run() {
    int got = 0;
    goro::run(procs(2), [&] {
        auto c = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([c] { c.send(42); });
        got = c.recv().value_or(0);
        wg.wait();
    });
    return got;
}

// Polls pred every millisecond for up to `limit` (plain thread or goroutine
// alike); pred's last answer.
template <class F>
bool eventually(F pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
}

// goro::dump_goroutines' text once it contains `what`, dumped every
// millisecond for up to `limit` from a goroutine (goro::sleep_for: the
// goroutine awaited runs meanwhile, even on one worker); the last dump if
// it never did.
inline std::string dump_once_it_shows(std::string_view what,
                                      std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    std::string dump;
    while (dump.find(what) == std::string::npos && std::chrono::steady_clock::now() < end) {
        goro::sleep_for(std::chrono::milliseconds(1));
        std::ostringstream os;
        goro::dump_goroutines(os);
        dump = os.str();
    }
    return dump;
}

// A wait_group's state word, its first member: the counter in the high 32
// bits, the waiters registered this round in the low 32.
inline std::uint64_t wg_state(goro::wait_group& wg) {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(&wg)->load();
}
inline std::uint32_t wg_waiters(goro::wait_group& wg) {
    return static_cast<std::uint32_t>(wg_state(wg));
}

// Counts how often each of n items came out (a queue's race tests, a
// scheduler's fan-outs); check() expects every one exactly once.
struct tally {
    explicit tally(long n) : n(n), seen(new std::atomic<int>[n]) {
        for (long i = 0; i < n; ++i) seen[i].store(0, std::memory_order_relaxed);
    }
    void hit(long i) { seen[i].fetch_add(1, std::memory_order_relaxed); }
    void check(const char* what) const {
        long lost = 0, twice = 0;
        for (long i = 0; i < n; ++i) {
            const int v = seen[i].load();
            lost += v == 0;
            twice += v > 1;
        }
        EXPECT_EQ(lost, 0) << what;
        EXPECT_EQ(twice, 0) << what;
    }
    long n;
    std::unique_ptr<std::atomic<int>[]> seen;
};

}  // namespace goro_test
