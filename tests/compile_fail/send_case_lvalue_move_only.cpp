// Must not compile: a select send case of an lvalue move-only value; the
// message says to move it.
#include <goro/select.hpp>

#include <memory>

int main() {
    auto ch = goro::make_chan<std::unique_ptr<int>>(1);
    auto v = std::make_unique<int>(1);
    goro::select(goro::send_case(ch, v));
}
