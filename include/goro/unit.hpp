// goro/unit.hpp — the empty value of signal channels (Go's struct{}).
#pragma once

namespace goro {
struct unit {
    friend constexpr bool operator==(unit, unit) noexcept { return true; }
};
}  // namespace goro
