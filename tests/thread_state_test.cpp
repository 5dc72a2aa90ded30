// Per-goroutine thread state: the C++ runtime's caught-exception stack and
// uncaught count, and errno, travel with a goroutine across parks and
// workers. Before, a goroutine that parked inside a catch block saw another
// goroutine's std::current_exception(), could free an exception another
// goroutine still used, and left std::uncaught_exceptions() at -1 or 1 on a
// worker.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::read_errno;
using goro_test::write_errno;

class ThreadState : public ::testing::TestWithParam<unsigned> {};

INSTANTIATE_TEST_SUITE_P(Procs, ThreadState, ::testing::Values(1u, 2u, 8u));

// 200 goroutines park inside catch handlers (and nested handlers) and check,
// after every resume, that the exception being handled is their own.
TEST_P(ThreadState, CatchHandlersParkAcrossWorkers) {
    std::atomic<int> ok{0};
    goro::run(procs(GetParam()), [&] {
        goro::wait_group wg;
        auto tick = goro::make_chan<int>(64);
        for (int i = 0; i < 200; ++i)
            wg.go([i, &ok, tick] {
                const std::string mine = "goroutine " + std::to_string(i);
                try {
                    throw std::runtime_error(mine);
                } catch (const std::runtime_error& e) {
                    for (int k = 0; k < 5; ++k) {
                        goro::yield();
                        goro::sleep_for(std::chrono::microseconds(i % 7));
                        tick.try_send(i);
                        tick.try_recv();
                        std::exception_ptr cur = std::current_exception();
                        try {
                            std::rethrow_exception(cur);
                        } catch (const std::runtime_error& again) {
                            if (again.what() != mine) return;  // another's exception
                        }
                        if (std::string(e.what()) != mine) return;
                        if (std::uncaught_exceptions() != 0) return;
                    }
                    try {
                        throw;  // rethrow the one being handled
                    } catch (const std::runtime_error& e2) {
                        goro::yield();
                        if (e2.what() != mine) return;
                    }
                }
                if (std::current_exception()) return;  // nothing left being handled
                ok.fetch_add(1);
            });
        wg.wait();
    });
    EXPECT_EQ(ok.load(), 200);
}

// A destructor that parks during unwinding sees uncaught_exceptions() == 1
// on whatever worker it resumes on, and leaves no count behind on workers.
TEST_P(ThreadState, DestructorsParkDuringUnwinding) {
    std::atomic<int> ok{0}, bad{0};
    goro::run(procs(GetParam()), [&] {
        goro::wait_group wg;
        for (int i = 0; i < 100; ++i)
            wg.go([&, i] {
                struct parks_in_dtor {
                    std::atomic<int>& bad;
                    int i;
                    ~parks_in_dtor() {
                        for (int k = 0; k < 3; ++k) {
                            goro::sleep_for(std::chrono::microseconds(1 + i % 5));
                            if (std::uncaught_exceptions() != 1) bad.fetch_add(1);
                        }
                    }
                };
                try {
                    parks_in_dtor p{bad, i};
                    throw std::logic_error("x");
                } catch (const std::logic_error&) {
                    if (std::uncaught_exceptions() == 0) ok.fetch_add(1);
                }
            });
        // Meanwhile other goroutines on the same workers must see 0.
        for (int i = 0; i < 100; ++i)
            wg.go([&] {
                for (int k = 0; k < 5; ++k) {
                    goro::yield();
                    if (std::uncaught_exceptions() != 0 || std::current_exception())
                        bad.fetch_add(1);
                }
            });
        wg.wait();
    });
    EXPECT_EQ(ok.load(), 100);
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(std::uncaught_exceptions(), 0);
}

// errno set before a park is what the goroutine reads after it.
TEST_P(ThreadState, ErrnoTravelsWithTheGoroutine) {
    std::atomic<int> ok{0};
    goro::run(procs(GetParam()), [&] {
        goro::wait_group wg;
        for (int i = 0; i < 100; ++i)
            wg.go([&, i] {
                for (int k = 0; k < 5; ++k) {
                    write_errno(1000 + i);
                    goro::yield();
                    goro::sleep_for(std::chrono::microseconds(i % 3));
                    if (read_errno() != 1000 + i) return;
                }
                ok.fetch_add(1);
            });
        wg.wait();
    });
    EXPECT_EQ(ok.load(), 100);
}

// errgroup takes a mutex inside its catch block (fail()): with many tasks
// failing at once, each failure is kept intact and one is rethrown.
TEST_P(ThreadState, ErrgroupFailuresParkingInCatchBlocks) {
    goro::run(procs(GetParam()), [] {
        for (int round = 0; round < 20; ++round) {
            goro::errgroup g;
            for (int i = 0; i < 50; ++i)
                g.go([i] {
                    goro::yield();
                    throw std::runtime_error("task " + std::to_string(i));
                });
            try {
                g.wait();
                ADD_FAILURE() << "no failure rethrown";
            } catch (const std::runtime_error& e) {
                EXPECT_EQ(std::string(e.what()).rfind("task ", 0), 0u) << e.what();
            }
        }
    });
}
