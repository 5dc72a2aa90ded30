// testing/bubble.cpp — goro::testing::bubble and wait() (goro/testing.hpp).
// The bubble is a goro::run with a run_mode: one worker, the virtual clock,
// exact deadlock detection, seeded select (runtime/lifecycle.cpp and
// diagnostics/deadlock.cpp do the work). wait() yields until nothing else
// is runnable: on the bubble's single worker, every other goroutine has then
// run until it blocked.
#include <thread>

#include "goro/errors.hpp"
#include "goro/testing.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

int run_bubble(const testing::bubble_options& opts, void (*entry)(void*), void* fn) {
    if (this_goroutine_record())
        throw misuse_error("goro::testing::bubble: called from inside a goroutine");
    goro::options o;
    o.procs = 1;
    o.stack_size = opts.stack_size;
    run_mode mode{opts.seed};
    return run_main_in(o, entry, fn, &mode);
}

}  // namespace goro::detail

namespace goro::testing {

void wait() {
    using namespace goro::detail;
    scheduler* s = current_scheduler();
    if (!this_goroutine_record() || !s || !s->virtual_time)
        throw misuse_error("goro::testing::wait: called outside a bubble's goroutine");
    worker* w = this_worker();
    for (;;) {
        // The outside before the queues (as in the worker's own check:
        // diagnostics/deadlock.cpp).
        const std::uint64_t users = plain_users.load(std::memory_order_seq_cst);
        const bool outside_quiet = s->only_goroutines_can_wake();
        const bool others_runnable = !w->rq.empty() || !w->spawns.empty() ||
                                     w->runnext.load(std::memory_order_acquire) != nullptr ||
                                     !s->global.empty();
        if (!others_runnable) {
            if (outside_quiet && plain_users.load(std::memory_order_seq_cst) == users) return;
            // Something outside (a descriptor, a blocking call) may still
            // wake one: give it real time.
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        goro::yield();
        w = this_worker();
    }
}

}  // namespace goro::testing
