// The suite's main: GoogleTest with goro's leak check on every test.
#include <gtest/gtest.h>

#include "goro/testing/gtest.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    goro::testing::install_leak_check();
    return RUN_ALL_TESTS();
}
