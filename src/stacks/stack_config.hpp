// stacks/stack_config.hpp — the stack settings a runtime starts with, read
// from goro::options and the environment and checked before anything uses
// them.
//
// Invariants: read_stack_config either returns settings that are all in
// range (stack_size a whole number of pages in [min_stack_size,
// max_stack_size]) or throws goro::misuse_error naming the variable or
// option and the rejected value; it changes no state either way. An empty
// environment variable counts as unset.
//
//   GORO_STACK_SIZE      bytes per goroutine stack, optional k/m/g suffix
//                        (powers of 1024), 64k..1g; rounded up to pages.
//                        Used when options::stack_size is 0 (but checked
//                        either way).
//   GORO_GUARDED_STACKS  non-negative integer: how many stacks at most get
//                        an mprotect guard page where guard regions are not
//                        available (0: none, all use the canary). Capped at
//                        vm.max_map_count / 8.
//   GORO_GUARD_REGIONS   0: never use MADV_GUARD_INSTALL guard regions (the
//                        fallback scheme, for tests); 1 (default): use them
//                        when the kernel has them (Linux 6.13+).
#pragma once

#include <cstddef>

namespace goro::detail {

inline constexpr std::size_t min_stack_size = std::size_t{64} << 10;
inline constexpr std::size_t max_stack_size = std::size_t{1} << 30;

struct stack_config {
    std::size_t stack_size = 0;  // bytes, whole pages
    bool guarded_stacks_set = false;
    std::size_t guarded_stacks = 0;  // GORO_GUARDED_STACKS, if set (saturated)
    bool guard_regions = true;       // false: GORO_GUARD_REGIONS=0
};

// options::stack_size (0: GORO_STACK_SIZE, else the default) and the other
// variables above. Throws goro::misuse_error on a value out of range or not
// a number.
stack_config read_stack_config(std::size_t option_stack_size, std::size_t default_size);

}  // namespace goro::detail
