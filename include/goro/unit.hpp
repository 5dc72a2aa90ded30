// goro/unit.hpp — the empty value of signal channels (Go's struct{}).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

namespace goro {
// The value of a signal channel: chan<unit> (Go's chan struct{}).
struct unit {
    friend constexpr bool operator==(unit, unit) noexcept { return true; }
};
}  // namespace goro
