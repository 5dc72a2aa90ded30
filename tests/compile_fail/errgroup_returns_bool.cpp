// Must not compile: an errgroup task (started with try_go) returning bool;
// false would count as success.
#include <goro/errgroup.hpp>

int main() {
    goro::errgroup g;
    (void)g.try_go([] { return false; });
    g.wait();
}
