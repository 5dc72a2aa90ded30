// Must not compile: a ticker where a channel is expected in a select case.
#include <goro/select.hpp>
#include <goro/time.hpp>

#include <chrono>

int main() {
    goro::ticker t(std::chrono::seconds(1));
    goro::select(goro::recv_case(t, [](auto) {}));
}
