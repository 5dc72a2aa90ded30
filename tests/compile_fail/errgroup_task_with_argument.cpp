// Must not compile: an errgroup task that takes an argument (the group calls
// it with none).
#include <goro/errgroup.hpp>

int main() {
    goro::errgroup g;
    g.go([](int job) { (void)job; });
    g.wait();
}
