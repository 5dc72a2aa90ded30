// Must not compile: an errgroup task returning std::error_condition, which
// is for comparing errors and does not convert to std::error_code.
#include <goro/errgroup.hpp>

int main() {
    goro::errgroup g;
    g.go([]() -> std::error_condition { return std::errc::timed_out; });
    g.wait();
}
