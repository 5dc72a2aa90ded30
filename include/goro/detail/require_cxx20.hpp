// goro/detail/require_cxx20.hpp — every public goro header includes this
// first, so that a build with an older language standard fails with a
// first error that names the cause, ahead of the errors about concepts and
// std::span that follow it.
// (goro/version.hpp alone does not: it is plain macros, usable by any
// build that only wants to check the version.)
#pragma once

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "goro needs C++20 (compile with -std=c++20 or later; in CMake, link goro::goro)"
#endif
