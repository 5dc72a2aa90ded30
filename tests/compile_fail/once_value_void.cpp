// Must not compile: once_value of a function that returns nothing (that is
// once_func's job).
#include <goro/once_func.hpp>

int main() {
    auto v = goro::once_value([] {});
    v();
}
