// Shutdown unwinds goroutines parked in every kind of blocking call, runs
// their destructors, leaves no goroutine behind, and the next run() works.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

std::atomic<int> destroyed{0};
struct witness {
    ~witness() { destroyed.fetch_add(1); }
};

}  // namespace

class Shutdown : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, Shutdown, ::testing::Values(1u, 2u, 8u));

TEST_P(Shutdown, UnwindsEveryKindOfParkedGoroutine) {
    destroyed = 0;
    int started = 0;
    // Objects the goroutines block on outlive run(), like a program's globals.
    auto unbuffered = goro::make_chan<int>();
    auto unbuffered2 = goro::make_chan<int>();
    auto full = goro::make_chan<int>(1);
    full.send(0);
    goro::chan<int> nil;
    auto never = goro::make_chan<int>();
    goro::mutex m;
    goro::rw_mutex rw;
    goro::mutex cm;
    goro::cond c(cm);
    goro::semaphore sem(1);
    goro::wait_group wg_never;
    wg_never.add(1);
    // Not a structured binding: clang 14 cannot capture those in lambdas.
    auto cancellable = goro::with_cancel(goro::background());
    goro::context ctx = cancellable.first;
    goro::cancel_func cancel = cancellable.second;

    goro::run(procs(GetParam()), [&] {
        m.lock();
        rw.lock();
        sem.acquire(1);
        auto spawn = [&](auto fn) {
            int id = ++started;
            goro::go([fn, id] {
                witness w;
                fn();
                ADD_FAILURE() << "blocked call #" << id << " returned";
            });
        };
        spawn([&] { unbuffered.recv(); });
        spawn([&] { unbuffered2.send(1); });
        spawn([&] { full.send(1); });
        spawn([&] { nil.recv(); });
        spawn([&] { goro::select(goro::recv_case(never), goro::recv_case(nil)); });
        spawn([] { goro::select(); });
        spawn([&] { std::lock_guard lk(m); });
        spawn([&] { std::shared_lock lk(rw); });
        spawn([&] { std::lock_guard lk(rw); });
        spawn([&] {
            std::unique_lock lk(cm);
            c.wait(lk);
        });
        spawn([&] { sem.acquire(1); });
        spawn([&, ctx = ctx] { (void)sem.acquire(ctx, 1); });
        spawn([&] { wg_never.wait(); });
        spawn([ctx = ctx] { ctx.done().recv(); });
        spawn([] { goro::sleep_for(1h); });
        spawn([] { goro::after(1h).recv(); });
        spawn([] {
            goro::errgroup g;
            g.go([] { goro::sleep_for(1h); });
            // The task may be unwound first; then wait() returns (the group
            // is done) and this goroutine unwinds at its next block.
            g.wait();
            goro::select();
        });
        goro::sleep_for(20ms);  // let them all park
        EXPECT_GE(goro::num_goroutines(), static_cast<std::size_t>(started + 1));
    });
    EXPECT_EQ(goro::num_goroutines(), 0u);
    EXPECT_EQ(destroyed.load(), started);
    cancel();

    // The primitives are still consistent: a fresh run can use them.
    goro::run(procs(GetParam()), [&] {
        m.unlock();
        std::lock_guard lk(m);  // nobody is left waiting on it
        rw.unlock();
        std::shared_lock rlk(rw);
        sem.release(1);
        EXPECT_TRUE(sem.try_acquire(1));
        goro::go([u = unbuffered] { u.send(5); });
        EXPECT_EQ(*unbuffered.recv(), 5);
    });
}
