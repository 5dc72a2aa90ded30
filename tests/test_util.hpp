// tests/test_util.hpp — helpers shared by goro's tests.
#pragma once

#include <chrono>
#include <cstdlib>

#include "goro/runtime.hpp"

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

}  // namespace goro_test
