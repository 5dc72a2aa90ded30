// Tests of goro::select: readiness, default, uniform choice, nil cases,
// send-value ownership, closed channels, the dynamic form, and storms of
// selects over shared channels in opposite orders.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Select, DefaultRunsWhenNothingIsReady) {
    auto a = goro::make_chan<int>();
    bool ran_default = false;
    auto i = goro::select(goro::recv_case(a, [](std::optional<int>) { ADD_FAILURE(); }),
                          goro::default_case([&] { ran_default = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(ran_default);
}

TEST(Select, ReturnsTheIndexOfTheReadyCaseAndRunsItsHandler) {
    auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
    b.send(9);
    int got = 0;
    auto i = goro::select(goro::recv_case(a), goro::default_case(),
                          goro::recv_case(b, [&](std::optional<int> v) { got = *v; }));
    EXPECT_EQ(i, 2u);
    EXPECT_EQ(got, 9);
}

TEST(Select, HandlerTakingTGetsZeroValueWhenClosed) {
    auto a = goro::make_chan<int>(1);
    a.send(5);
    int got = -1;
    goro::select(goro::recv_case(a, [&](int v) { got = v; }));
    EXPECT_EQ(got, 5);
    a.close();
    goro::select(goro::recv_case(a, [&](int v) { got = v; }));
    EXPECT_EQ(got, 0);
}

TEST(Select, ClosedChannelDeliversNullopt) {
    auto a = goro::make_chan<int>();
    a.close();
    bool closed = false;
    goro::select(goro::recv_case(a, [&](std::optional<int> v) { closed = !v; }));
    EXPECT_TRUE(closed);
}

TEST(Select, SendOnClosedChannelThrows) {
    auto a = goro::make_chan<int>(1);
    a.close();
    EXPECT_THROW(goro::select(goro::send_case(a, 1), goro::default_case()),
                 goro::closed_channel_error);
}

TEST(Select, NilCasesAreNeverReady) {
    goro::chan<int> nil;
    auto i = goro::select(goro::recv_case(nil), goro::send_case(nil, 1), goro::default_case());
    EXPECT_EQ(i, 2u);
}

TEST(Select, SendValueMovedOnlyIfChosen) {
    auto full = goro::make_chan<std::unique_ptr<int>>(1);
    full.send(std::make_unique<int>(0));
    auto v = std::make_unique<int>(5);
    auto i = goro::select(goro::send_case(full, std::move(v)), goro::default_case());
    EXPECT_EQ(i, 1u);
    ASSERT_NE(v, nullptr) << "a send case that was not chosen moved its value";
    auto room = goro::make_chan<std::unique_ptr<int>>(1);
    i = goro::select(goro::send_case(full, std::move(v)), goro::send_case(room, std::move(v)));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(v, nullptr);
    EXPECT_EQ(**room.recv(), 5);
    // An lvalue is copied: the caller's string stays.
    auto strings = goro::make_chan<std::string>(1);
    std::string s = "keep";
    goro::select(goro::send_case(strings, s));
    EXPECT_EQ(s, "keep");
    EXPECT_EQ(*strings.recv(), "keep");
}

TEST(Select, ChoosesUniformlyAmongReadyCases) {
    auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1), c = goro::make_chan<int>(1);
    std::array<int, 3> hits{};
    const int n = 30000;
    for (int k = 0; k < n; ++k) {
        a.try_send(1);
        b.try_send(1);
        c.try_send(1);
        hits[goro::select(goro::recv_case(a), goro::recv_case(b), goro::recv_case(c))]++;
    }
    for (int h : hits) {
        EXPECT_GT(h, n / 3 - n / 20) << "biased choice";
        EXPECT_LT(h, n / 3 + n / 20) << "biased choice";
    }
}

TEST(Select, BlocksUntilACaseIsReady) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            auto a = goro::make_chan<int>(), b = goro::make_chan<int>();
            goro::go([b] {
                goro::sleep_for(5ms);
                b.send(3);
            });
            int got = 0;
            auto i =
                goro::select(goro::recv_case(a), goro::recv_case(b, [&](auto v) { got = *v; }));
            EXPECT_EQ(i, 1u);
            EXPECT_EQ(got, 3);
            // A blocked send case is taken by a later receiver.
            goro::go([a] {
                goro::sleep_for(5ms);
                EXPECT_EQ(*a.recv(), 8);
            });
            i = goro::select(goro::send_case(a, 8), goro::recv_case(b));
            EXPECT_EQ(i, 0u);
        });
}

TEST(Select, TimeoutWithAfter) {
    goro::run(procs(2), [] {
        auto never = goro::make_chan<int>();
        auto t0 = goro::clock::now();
        bool timed_out = false;
        goro::select(goro::recv_case(never),
                     goro::recv_case(goro::after(20ms), [&](auto) { timed_out = true; }));
        EXPECT_TRUE(timed_out);
        EXPECT_GE(goro::clock::now() - t0, 20ms);
    });
}

TEST(Select, CloseWakesABlockedSelect) {
    goro::run(procs(2), [] {
        for (int r = 0; r < static_cast<int>(scaled(200)); ++r) {
            auto a = goro::make_chan<int>(), b = goro::make_chan<int>();
            goro::wait_group wg;
            std::atomic<bool> saw_close{false};
            wg.go([&] {
                goro::select(goro::recv_case(a, [&](std::optional<int> v) { saw_close = !v; }),
                             goro::recv_case(b));
            });
            goro::yield();
            a.close();
            wg.wait();
            ASSERT_TRUE(saw_close.load());
        }
    });
}

TEST(Select, FromPlainThread) {
    auto a = goro::make_chan<int>();
    std::thread t([a] {
        std::this_thread::sleep_for(5ms);
        a.send(4);
    });
    int got = 0;
    goro::select(goro::recv_case(a, [&](auto v) { got = *v; }));
    EXPECT_EQ(got, 4);
    t.join();
}

TEST(Select, NoCasesBlocksForeverUntilShutdown) {
    static std::atomic<bool> unwound{false};
    goro::run(procs(1), [] {
        goro::go([] {
            struct guard {
                ~guard() { unwound = true; }
            } g;
            goro::select();
            ADD_FAILURE() << "empty select returned";
        });
        goro::sleep_for(5ms);
    });
    EXPECT_TRUE(unwound.load());
}

TEST(Select, DynamicFanIn) {
    goro::run(procs(2), [] {
        const int n = 10, per = 100;
        std::vector<goro::chan<int>> inputs;
        for (int i = 0; i < n; ++i) inputs.push_back(goro::make_chan<int>());
        for (int i = 0; i < n; ++i)
            goro::go([ch = inputs[i], i] {
                for (int k = 0; k < per; ++k) ch.send(i);
                ch.close();
            });
        std::vector<goro::select_case<int>> cases;
        for (auto& ch : inputs) cases.push_back(goro::select_case<int>::recv(ch));
        std::vector<int> counts(n);
        int open = n;
        while (open > 0) {
            std::size_t i = goro::select(std::span(cases));
            if (auto& v = cases[i].value()) {
                counts[*v]++;
            } else {
                cases[i] = goro::select_case<int>::recv(goro::chan<int>());  // nil: never again
                --open;
            }
        }
        for (int c : counts) EXPECT_EQ(c, per);
        EXPECT_FALSE(goro::try_select(cases).has_value());
    });
}

TEST(Select, DynamicSendCases) {
    auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
    std::vector<goro::select_case<int>> cases;
    cases.push_back(goro::select_case<int>::send(a, 1));
    cases.push_back(goro::select_case<int>::send(b, 2));
    auto i = goro::select(cases);
    auto j = goro::select(cases);  // the sent case is now empty: the other runs
    EXPECT_NE(i, j);
    EXPECT_EQ(*a.recv(), 1);
    EXPECT_EQ(*b.recv(), 2);
}

TEST(SelectStress, OppositeOrdersOverSharedChannels) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            auto a = goro::make_chan<int>(), b = goro::make_chan<int>(4);
            const int per = static_cast<int>(scaled(2000, 20));
            std::atomic<long> received{0};
            goro::wait_group senders, receivers;
            // Senders select over (a, b), receivers over (b, a): opposite orders.
            for (int s = 0; s < 4; ++s)
                senders.go([&] {
                    for (int k = 0; k < per; ++k)
                        goro::select(goro::send_case(a, 1), goro::send_case(b, 1));
                });
            for (int r = 0; r < 4; ++r)
                receivers.go([&] {
                    for (;;) {
                        bool done = false;
                        goro::select(goro::recv_case(b,
                                                     [&](std::optional<int> v) {
                                                         if (v)
                                                             received += *v;
                                                         else
                                                             done = true;
                                                     }),
                                     goro::recv_case(a, [&](std::optional<int> v) {
                                         if (v)
                                             received += *v;
                                         else
                                             done = true;
                                     }));
                        if (done) return;
                    }
                });
            senders.wait();
            // Let the receivers drain the buffer, then close both.
            while (b.size() > 0) goro::yield();
            a.close();
            b.close();
            receivers.wait();
            EXPECT_EQ(received.load(), 4L * per);
        });
}

TEST(SelectStress, SelectsOnBothSidesOfUnbufferedChannels) {
    goro::run(procs(2), [] {
        const int n = static_cast<int>(scaled(5000, 20));
        auto a = goro::make_chan<int>(), b = goro::make_chan<int>();
        goro::wait_group wg;
        std::atomic<long> got{0};
        wg.go([&] {
            for (int i = 0; i < n; ++i) goro::select(goro::send_case(a, 1), goro::send_case(b, 2));
        });
        wg.go([&] {
            for (int i = 0; i < n; ++i)
                goro::select(goro::recv_case(a, [&](auto v) { got += *v; }),
                             goro::recv_case(b, [&](auto v) { got += *v; }));
        });
        wg.wait();
        EXPECT_GE(got.load(), n);
        EXPECT_LE(got.load(), 2L * n);
    });
}

// A blocking select over 8 channels, woken by each in turn, leaves no waiter
// behind on the other 7 (its waiters live in its frame), and unlinks them
// under their channels' locks while a prober try_sends on every channel at
// once (TSan sees an unlocked unlink). Covers the first pass that skips
// channels which do not look ready, and the wake-up that unlinks the rest,
// on distinct channels and with one channel twice.
TEST(Select, BlockingSelectLeavesNoWaiterBehind) {
    for (bool repeat_a_channel : {false, true}) {
        goro::run(procs(2), [&] {
            std::vector<goro::chan<int>> ch;
            for (int i = 0; i < 8; ++i) ch.push_back(goro::make_chan<int>());
            goro::chan<int> c7 = repeat_a_channel ? ch[0] : ch[7];
            const int rounds = static_cast<int>(scaled(4000));
            std::atomic<bool> stop{false};
            std::atomic<long> probes{0};
            goro::wait_group wg;
            wg.go([&] {
                for (int r = 0; r < rounds; ++r) ch[static_cast<std::size_t>(r % 7)].send(r);
            });
            wg.go([&] {
                while (!stop.load()) {
                    for (auto& c : ch)
                        if (c.try_send(-1000)) probes.fetch_add(1);
                    goro::yield();
                }
            });
            long sum = 0, probed = 0;
            for (int received = 0; received < rounds;) {
                int got = 0;
                auto on = [&](std::optional<int> v) { got = v.value_or(-1); };
                goro::select(goro::recv_case(ch[0], on), goro::recv_case(ch[1], on),
                             goro::recv_case(ch[2], on), goro::recv_case(ch[3], on),
                             goro::recv_case(ch[4], on), goro::recv_case(ch[5], on),
                             goro::recv_case(ch[6], on), goro::recv_case(c7, on));
                if (got == -1000) {
                    ++probed;
                    continue;
                }
                sum += got;
                ++received;
            }
            stop.store(true);
            wg.wait();
            // Every probe that went through was received by a select.
            EXPECT_EQ(probes.load(), probed)
                << "a value went to a waiter of a select that had returned";
            EXPECT_EQ(sum, static_cast<long>(rounds) * (rounds - 1) / 2);
            // And while this goroutine waits elsewhere (a stale waiter's
            // parker would be claimable now): nobody receives.
            long stale = 0;
            goro::wait_group probe;
            probe.go([&] {
                for (auto& c : ch)
                    if (c.try_send(-1000)) ++stale;
            });
            probe.wait();
            EXPECT_EQ(stale, 0) << "a select that had returned still received";
        });
    }
}

// Each new plain thread's first select between two ready cases is a fair
// coin: the per-thread random state is seeded lazily, and threads run one
// after another reuse the same stack and TLS block (same address). Seeded
// from the address alone, 1000 of 1000 picked the same case (break15).
TEST(Select, FirstSelectOfEachNewThreadIsUniform) {
    const long n = scaled(1000, 4);
    long first = 0;
    for (long t = 0; t < n; ++t) {
        std::thread th([&] {
            auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
            a.send(0);
            b.send(1);
            if (goro::select(goro::recv_case(a), goro::recv_case(b)) == 0) ++first;
        });
        th.join();
    }
    // Chi-square with one degree of freedom, bound ~8 standard deviations
    // above its mean: a fair coin fails it with probability far below 1e-9.
    const double half = static_cast<double>(n) / 2.0, d = static_cast<double>(first) - half;
    EXPECT_LT(2.0 * d * d / half, 1.0 + 8.0 * std::sqrt(2.0) + 8.0)
        << first << " of " << n << " first selects took case 0";
}
