// Must not compile: range-for over a ticker instead of its channel.
#include <goro/time.hpp>

#include <chrono>

int main() {
    goro::ticker t(std::chrono::seconds(1));
    for (auto tick : t) (void)tick;
}
