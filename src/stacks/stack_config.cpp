// stacks/stack_config.cpp — parsing and range checks of the stack settings
// (see the header for the variables). Invariants: nothing here has side
// effects besides reading the environment; every rejection is a
// goro::misuse_error whose what() names the variable or option and quotes
// the value (non-printable bytes escaped, long values cut).
#include "stacks/stack_config.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "goro/errors.hpp"
#include "runtime/parse_count.hpp"

namespace goro::detail {

namespace {

constexpr std::size_t quoted_max = 64;

std::string quoted(std::string_view v) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < v.size() && i < quoted_max; ++i) {
        auto c = static_cast<unsigned char>(v[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (v.size() > quoted_max) out += "...";
    out += '"';
    return out;
}

const char* env(const char* name) noexcept {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

// Digits and an optional k/m/g suffix (powers of 1024), saturating. False if
// v has any other form (sign, space, fraction, exponent, trailing junk).
bool parse_size(std::string_view v, std::uint64_t& out) noexcept {
    unsigned shift = 0;
    if (!v.empty()) {
        switch (v.back()) {
            case 'k':
            case 'K':
                shift = 10;
                break;
            case 'm':
            case 'M':
                shift = 20;
                break;
            case 'g':
            case 'G':
                shift = 30;
                break;
            default:
                break;
        }
    }
    if (shift) v.remove_suffix(1);
    std::uint64_t n = 0;
    if (!parse_count(v, n)) return false;
    out = n > (UINT64_MAX >> shift) ? UINT64_MAX : n << shift;
    return true;
}

std::string range_text() {
    return std::to_string(min_stack_size) + ".." + std::to_string(max_stack_size);
}

std::size_t round_to_pages(std::size_t n) noexcept {
    constexpr std::size_t page = 4096;
    return (n + page - 1) & ~(page - 1);
}

}  // namespace

stack_config read_stack_config(std::size_t option_stack_size, std::size_t default_size) {
    stack_config c;

    // The variable is checked even when the option overrides it: a bad
    // value is reported whatever the program passes.
    std::size_t env_size = 0;
    if (const char* v = env("GORO_STACK_SIZE")) {
        std::uint64_t n = 0;
        if (!parse_size(v, n))
            throw misuse_error("goro: GORO_STACK_SIZE=" + quoted(v) +
                               ": not a size in bytes (expected " + range_text() +
                               ", optional k/m/g suffix)");
        if (n < min_stack_size || n > max_stack_size)
            throw misuse_error("goro: GORO_STACK_SIZE=" + quoted(v) + ": out of range (expected " +
                               range_text() + " bytes, optional k/m/g suffix)");
        env_size = static_cast<std::size_t>(n);
    }
    if (option_stack_size != 0 &&
        (option_stack_size < min_stack_size || option_stack_size > max_stack_size))
        throw misuse_error("goro: options::stack_size=" + std::to_string(option_stack_size) +
                           ": out of range (expected 0 for the default, or " + range_text() +
                           " bytes)");
    c.stack_size = option_stack_size ? option_stack_size : env_size ? env_size : default_size;
    c.stack_size = round_to_pages(c.stack_size);  // max_stack_size is whole pages

    if (const char* v = env("GORO_GUARDED_STACKS")) {
        std::uint64_t n = 0;
        if (!parse_count(v, n))
            throw misuse_error("goro: GORO_GUARDED_STACKS=" + quoted(v) +
                               ": not a non-negative integer");
        c.guarded_stacks_set = true;
        c.guarded_stacks = n > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(n);
    }

    if (const char* v = env("GORO_GUARD_REGIONS")) {
        const std::string_view s = v;
        if (s != "0" && s != "1")
            throw misuse_error("goro: GORO_GUARD_REGIONS=" + quoted(v) +
                               ": expected 0 (never) or 1 (when the kernel has them)");
        c.guard_regions = s == "1";
    }
    return c;
}

}  // namespace goro::detail
