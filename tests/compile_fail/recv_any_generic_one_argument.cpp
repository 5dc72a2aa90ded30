// Must not compile: a one-argument generic handler for recv_any would be
// given the element's position, not the value.
#include <goro/select.hpp>

#include <cstdio>
#include <vector>

int main() {
    std::vector<goro::chan<int>> chans(2);
    goro::select(goro::recv_any(chans, [](auto v) { std::printf("%d\n", static_cast<int>(*v)); }),
                 goro::default_case());
}
