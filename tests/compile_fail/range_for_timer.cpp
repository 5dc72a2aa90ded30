// Must not compile: range-for over a timer instead of its channel.
#include <goro/time.hpp>

#include <chrono>

int main() {
    goro::timer t(std::chrono::seconds(1));
    for (auto tick : t) (void)tick;
}
