// diagnostics/assert.hpp — GORO_ASSERT: the invariants the source files state,
// checked in Debug builds and in the ASan and TSan presets (GORO_ASSERTS,
// set by CMake), compiled out elsewhere. A failure is a bug in goro: it
// prints the condition, the message and where, then aborts (Go's throw).
#pragma once

namespace goro::detail {
[[noreturn]] void assert_failed(const char* cond, const char* msg, const char* file,
                                int line) noexcept;
}

#if defined(GORO_ASSERTS)
#define GORO_ASSERT(cond, msg) \
    ((cond) ? static_cast<void>(0) : ::goro::detail::assert_failed(#cond, msg, __FILE__, __LINE__))
#else
#define GORO_ASSERT(cond, msg) static_cast<void>(0)
#endif
