// goro::wait_readable / wait_writable on the network poller: a goroutine
// waiting on a descriptor parks ("IO wait") and readiness makes it runnable;
// deadlines and contexts wake it with an error; plain threads block;
// shutdown unwinds it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace goro::detail {
// context.cpp, for tests: the after-funcs registered on ctx's canceller.
std::size_t context_after_func_count(const goro::context& ctx);
}  // namespace goro::detail

namespace {

struct pipe_pair {
    int r = -1, w = -1;
    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category());
        r = fds[0];
        w = fds[1];
    }
    ~pipe_pair() {
        ::close(r);
        ::close(w);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
};

// Reads one byte, waiting with wait_readable on EAGAIN.
std::error_code read_byte(int fd, char& c, goro::clock::time_point deadline) {
    for (;;) {
        ssize_t n = ::read(fd, &c, 1);
        if (n == 1) return {};
        if (n < 0 && errno != EAGAIN) return {errno, std::generic_category()};
        if (auto ec = goro::wait_readable(fd, deadline)) return ec;
    }
}

}  // namespace

class Io : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, Io, ::testing::Values(1u, 2u, 8u));

TEST_P(Io, ReadinessWakesAParkedGoroutine) {
    goro::run(procs(GetParam()), [] {
        pipe_pair p;
        char got = 0;
        goro::wait_group wg;
        wg.go([&] { EXPECT_FALSE(read_byte(p.r, got, goro::clock::time_point::max())); });
        // It parks in IO wait (within 5 ms alone; a loaded machine may run
        // it later: an ASan CI run found it still running after 5 ms).
        const std::string dump = goro_test::dump_once_it_shows("IO wait (read)");
        EXPECT_NE(dump.find("IO wait (read)"), std::string::npos) << dump;
        ASSERT_EQ(::write(p.w, "x", 1), 1);
        wg.wait();
        EXPECT_EQ(got, 'x');
    });
}

TEST_P(Io, ManyGoroutinesOnManyPipes) {
    goro::run(procs(GetParam()), [] {
        const int n = goro_test::sanitized ? 100 : 500;
        std::vector<std::unique_ptr<pipe_pair>> pipes;
        for (int i = 0; i < n; ++i) pipes.push_back(std::make_unique<pipe_pair>());
        std::atomic<long> sum{0};
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&, i] {
                for (int k = 0; k < 3; ++k) {
                    char c = 0;
                    ASSERT_FALSE(read_byte(pipes[i]->r, c, goro::clock::time_point::max()));
                    sum += c;
                }
            });
        for (int k = 0; k < 3; ++k) {
            goro::sleep_for(1ms);
            for (int i = 0; i < n; ++i) ASSERT_EQ(::write(pipes[i]->w, "\x01", 1), 1);
        }
        wg.wait();
        EXPECT_EQ(sum.load(), 3L * n);
    });
}

TEST_P(Io, WritableAfterTheReaderDrains) {
    goro::run(procs(GetParam()), [] {
        pipe_pair p;
        char buf[4096] = {};
        while (::write(p.w, buf, sizeof buf) > 0) {
        }
        ASSERT_EQ(errno, EAGAIN);  // full
        std::atomic<bool> woke{false};
        goro::wait_group wg;
        wg.go([&] {
            EXPECT_FALSE(goro::wait_writable(p.w));
            woke = true;
        });
        goro::sleep_for(5ms);
        EXPECT_FALSE(woke.load());
        while (::read(p.r, buf, sizeof buf) > 0) {
        }
        wg.wait();
        EXPECT_TRUE(woke.load());
    });
}

TEST_P(Io, DeadlinesPastAndFuture) {
    goro::run(procs(GetParam()), [] {
        pipe_pair p;
        EXPECT_EQ(goro::wait_readable(p.r, goro::clock::now() - 1s), goro::errc::deadline_exceeded);
        EXPECT_EQ(goro::wait_readable(p.r, goro::clock::time_point::min()),
                  goro::errc::deadline_exceeded);
        auto start = goro::clock::now();
        EXPECT_EQ(goro::wait_readable(p.r, start + 20ms), goro::errc::deadline_exceeded);
        EXPECT_GE(goro::clock::now() - start, 20ms);
        EXPECT_LT(goro::clock::now() - start, 5s);
        // Data that arrives before the deadline wins.
        goro::go([w = p.w] {
            goro::sleep_for(2ms);
            ASSERT_EQ(::write(w, "y", 1), 1);
        });
        char c = 0;
        EXPECT_FALSE(read_byte(p.r, c, goro::clock::now() + 10s));
        EXPECT_EQ(c, 'y');
    });
}

TEST_P(Io, ContextCancellationWakesTheWaiter) {
    goro::run(procs(GetParam()), [] {
        pipe_pair p;
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        std::error_code ec;
        goro::wait_group wg;
        wg.go([&, c = ctx] { ec = goro::wait_readable(p.r, c); });
        goro::sleep_for(3ms);
        cancel();
        wg.wait();
        EXPECT_EQ(ec, goro::errc::canceled);
        auto [tctx, tcancel] = goro::with_timeout(goro::background(), 5ms);
        EXPECT_EQ(goro::wait_readable(p.r, tctx), goro::errc::deadline_exceeded);
        tcancel();
        // Already done: at once.
        EXPECT_EQ(goro::wait_readable(p.r, ctx), goro::errc::canceled);
    });
}

TEST(IoThreads, PlainThreadBlocksUntilReady) {
    pipe_pair p;
    std::thread writer([w = p.w] {
        std::this_thread::sleep_for(5ms);
        ASSERT_EQ(::write(w, "z", 1), 1);
    });
    char c = 0;
    EXPECT_FALSE(read_byte(p.r, c, goro::clock::now() + 10s));
    EXPECT_EQ(c, 'z');
    writer.join();
}

TEST(IoShutdown, GoroutinesInIoWaitAreUnwound) {
    static std::atomic<int> unwound{0};
    struct witness {
        ~witness() { unwound.fetch_add(1); }
    };
    pipe_pair p;
    goro::run(procs(2), [&] {
        for (int i = 0; i < 10; ++i)
            goro::go([&] {
                witness w;
                (void)goro::wait_readable(p.r);
                ADD_FAILURE() << "woke without data";
            });
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(unwound.load(), 10);
}

// A wait_readable(fd, ctx) unwound at shutdown deregisters the after-func
// it registered on ctx (review 12: it leaked one per unwound waiter, and a
// later cancel ran it against the dead wait).
TEST(IoShutdown, UnwoundContextWaitDeregistersItsCallback) {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    pipe_pair p;
    goro::run(procs(2), [&, ctx = ctx] {
        for (int i = 0; i < 4; ++i)
            goro::go([&, ctx] {
                (void)goro::wait_readable(p.r, ctx);
                ADD_FAILURE() << "woke without data";
            });
        for (int i = 0; i < 4; ++i) (void)goro::wait_writable(p.w, ctx);  // returns at once
        goro::sleep_for(5ms);
        EXPECT_EQ(goro::detail::context_after_func_count(ctx), 4u);
    });
    EXPECT_EQ(goro::detail::context_after_func_count(ctx), 0u);
    cancel();  // nothing left to run against the dead waits
}

// Readiness is delivered while every other worker is busy in a CPU loop:
// busy workers poll the network without blocking now and then.
TEST(IoBusy, ReadinessIsNotStuckBehindBusyGoroutines) {
    goro::run(procs(2), [] {
        pipe_pair p;
        std::atomic<bool> stop{false};
        goro::wait_group busy;
        for (int i = 0; i < 4; ++i)
            busy.go([&] {
                while (!stop.load(std::memory_order_relaxed)) goro::yield();  // never idle
            });
        auto start = goro::clock::now();
        goro::go([w = p.w] {
            goro::sleep_for(2ms);
            ASSERT_EQ(::write(w, "b", 1), 1);
        });
        char c = 0;
        EXPECT_FALSE(read_byte(p.r, c, goro::clock::now() + 10s));
        EXPECT_EQ(c, 'b');
        EXPECT_LT(goro::clock::now() - start, 1s);
        stop = true;
        busy.wait();
    });
}
