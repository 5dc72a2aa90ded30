// Must not compile: a ticker passed to select as if it were a case.
#include <goro/select.hpp>
#include <goro/time.hpp>

#include <chrono>

int main() {
    goro::ticker t(std::chrono::seconds(1));
    goro::select(t);
}
