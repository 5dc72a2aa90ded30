// Must not compile, with one readable line: go() with arguments the
// function cannot be called with (here an lvalue reference parameter).
#include <goro/runtime.hpp>

int main() {
    int x = 0;
    goro::go([](int& r) { ++r; }, x);
}
