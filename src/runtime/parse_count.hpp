// runtime/parse_count.hpp — the one parser of the numeric environment
// variables (GORO_MAXPROCS, GORO_STACK_SIZE, GORO_GUARDED_STACKS,
// GORO_BLOCKING_THREADS): decimal digits only, so that a sign, white space
// or a suffix is refused rather than skipped (strtoull would take " 2" and
// "+2"). No side effects, no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace goro::detail {

// Decimal digits only, saturating at UINT64_MAX (the caller's range check
// then refuses it). False if v is empty or not all digits.
inline bool parse_count(std::string_view v, std::uint64_t& out) noexcept {
    if (v.empty()) return false;
    std::uint64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    out = n;
    return true;
}

}  // namespace goro::detail
