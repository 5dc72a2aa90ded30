// Must not compile: a channel of a type whose move constructor may throw.
#include <goro/chan.hpp>

struct throwing_move {
    throwing_move() = default;
    throwing_move(throwing_move&&) {}  // not noexcept
};

int main() {
    auto ch = goro::make_chan<throwing_move>(1);
    ch.send(throwing_move{});
}
