// goro/source_location.hpp — where a goroutine was started.
//
// goro::source_location needs compiler support that clang 14 lacks with
// libstdc++, so goro carries its own, filled by the same builtins. Use it as
// a defaulted parameter: `goro::source_location where = goro::source_location::current()`.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>

#if defined(__clang__)
#define GORO_BUILTIN_COLUMN __builtin_COLUMN()
#else
#define GORO_BUILTIN_COLUMN 0  // g++ 12 has no __builtin_COLUMN
#endif

namespace goro {

// A place in the source: a file, function, line and column.
class source_location {
  public:
    // The place of the call (as a defaulted argument: of its caller).
    static constexpr source_location current(
        const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
        std::uint_least32_t line = __builtin_LINE(),
        std::uint_least32_t column = GORO_BUILTIN_COLUMN) noexcept {
        source_location l;
        l.file_ = file;
        l.function_ = function;
        l.line_ = line;
        l.column_ = column;
        return l;
    }
    constexpr source_location() noexcept = default;
    // The parts of the place.
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr const char* function_name() const noexcept { return function_; }
    constexpr std::uint_least32_t line() const noexcept { return line_; }
    constexpr std::uint_least32_t column() const noexcept { return column_; }

  private:
    const char* file_ = "";
    const char* function_ = "";
    std::uint_least32_t line_ = 0;
    std::uint_least32_t column_ = 0;
};

}  // namespace goro
