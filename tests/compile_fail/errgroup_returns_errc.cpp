// Must not compile: an errgroup task returning std::errc. std::errc does not
// convert to std::error_code, so the group would count a failure as success.
#include <goro/errgroup.hpp>

int main() {
    goro::errgroup g;
    g.go([] { return std::errc::io_error; });
    g.wait();
}
