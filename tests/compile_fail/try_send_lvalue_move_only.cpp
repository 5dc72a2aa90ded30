// Must not compile: try_send of an lvalue move-only value (it would need a
// copy); the message says to move it.
#include <goro/chan.hpp>

#include <memory>

int main() {
    auto ch = goro::make_chan<std::unique_ptr<int>>(1);
    auto v = std::make_unique<int>(1);
    ch.try_send(v);
}
