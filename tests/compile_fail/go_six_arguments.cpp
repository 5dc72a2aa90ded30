// Must not compile, with one readable line: go() with more than five
// arguments after the function.
#include <goro/runtime.hpp>

int main() {
    goro::go([](int, int, int, int, int, int) {}, 1, 2, 3, 4, 5, 6);
}
