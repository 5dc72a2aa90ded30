// Must not compile: goro built as C++17 (the test passes -std=c++17).
#include <goro/goro.hpp>

int main() {
    return goro::run([] { return 0; });
}
