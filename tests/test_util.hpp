// tests/test_util.hpp — helpers shared by goro's tests.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdlib>

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

}  // namespace goro_test
