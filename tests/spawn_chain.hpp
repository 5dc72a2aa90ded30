// tests/spawn_chain.hpp — an endless chain of spawns: each link spawns its
// successor and exits, until told to stop or out of time. It keeps a
// worker's spawn stack churning (the fairness tests of break21 and break22).
#pragma once

#include <atomic>
#include <chrono>

#include "goro/goro.hpp"

namespace goro_test {

struct chain_state {
    std::atomic<bool> stop{false};
    std::atomic<long> links{0};
    std::chrono::steady_clock::time_point give_up;
};

inline void spawn_chain(chain_state* c) {
    c->links.fetch_add(1, std::memory_order_relaxed);
    if (!c->stop.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < c->give_up)
        goro::go([c] { spawn_chain(c); });
}

}  // namespace goro_test
