// tests/stack_util.hpp — helpers for tests that look at goroutine stacks.
#pragma once

#include <climits>
#include <cstdint>
#include <string>

#include "stacks/stack_pool.hpp"

namespace goro_test {

// The lowest usable address of the running goroutine's stack slot (0 off a
// goroutine stack).
[[gnu::noinline]] inline std::uintptr_t current_slot_lo() {
    volatile char here = 0;
    const auto addr = reinterpret_cast<std::uintptr_t>(&here);
    std::uintptr_t lo = 0;
    goro::detail::stack_pool::instance().for_each_slot([&](goro::detail::stack_slot& s) {
        if (addr >= s.lo && addr < s.hi) lo = s.lo;
    });
    return lo;
}

inline volatile long recurse_never = LONG_MAX;

// Unbounded recursion in ~1 KiB frames: smaller than a page, so no frame can
// step over a guard page. Overflows any stack it runs on.
[[gnu::noinline]] inline long recurse_forever(long depth, volatile char* prev) {
    volatile char frame[1024];
    frame[0] = prev ? prev[0] : 1;
    frame[sizeof frame - 1] = frame[0];
    if (depth == recurse_never) return 0;
    return recurse_forever(depth + 1, frame) + frame[sizeof frame - 1];
}

// In a death-test child's stderr: "id=N;" (printed by the child), then the
// runtime's line "... stack overflow: goroutine N ..." for the same N. That
// line, or "" when there is none.
inline std::string overflow_report_for_printed_id(const std::string& out) {
    const std::size_t at = out.find("id=");
    if (at == std::string::npos) return {};
    const std::size_t semi = out.find(';', at);
    if (semi == std::string::npos || semi == at + 3) return {};
    const std::string id = out.substr(at + 3, semi - at - 3);
    if (id.find_first_not_of("0123456789") != std::string::npos) return {};
    const std::size_t r = out.find("stack overflow: goroutine " + id + " ", semi);
    if (r == std::string::npos) return {};
    return out.substr(r, out.find('\n', r) - r);
}

}  // namespace goro_test
