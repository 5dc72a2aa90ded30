// goro/detail/require_callable.hpp — the check every call that takes a
// function to run later makes first: an empty std::function or a null
// function pointer is refused at the call (Go: "go of nil func value"),
// not discovered later inside a goroutine where it would end the process.
#pragma once

#include <functional>
#include <string>
#include <type_traits>

#include "goro/errors.hpp"

namespace goro::detail {

template <class F>
struct is_std_function : std::false_type {};
template <class R, class... A>
struct is_std_function<std::function<R(A...)>> : std::true_type {};

// Throws goro::misuse_error naming `who` when fn is null or empty.
template <class F>
void require_callable(const F& fn, const char* who) {
    using D = std::remove_cvref_t<F>;
    if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D> ||
                  is_std_function<D>::value) {
        if (!fn) throw misuse_error(std::string(who) + ": the function is empty (null)");
    }
}

}  // namespace goro::detail
