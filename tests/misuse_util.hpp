// tests/misuse_util.hpp — expect_misuse, shared by the tests of misuse errors.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "goro/errors.hpp"

namespace goro_test {

// Runs f, expecting a goro::misuse_error (derived from std::logic_error, the
// contract) whose what() contains `names`.
template <class F>
void expect_misuse(F&& f, const std::string& names) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one naming " << names;
    } catch (const goro::misuse_error& e) {
        const std::logic_error& base = e;
        EXPECT_NE(std::string(base.what()).find(names), std::string::npos) << base.what();
    }
}

}  // namespace goro_test
