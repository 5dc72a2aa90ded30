// Must not compile: an errgroup task returning an int status, which the
// group would ignore.
#include <goro/errgroup.hpp>

int main() {
    goro::errgroup g;
    g.go([] { return -1; });
    g.wait();
}
