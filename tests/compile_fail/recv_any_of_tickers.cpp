// Must not compile: recv_any over tickers instead of their channels.
#include <goro/select.hpp>
#include <goro/time.hpp>

#include <vector>

int main() {
    std::vector<goro::ticker> ts;
    goro::select(goro::recv_any(ts));
}
