// tests/stack_util.hpp — helpers for tests that look at goroutine stacks.
#pragma once

#include <cstdint>

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

}  // namespace goro_test
