// Tests of goro::chan: the state table (nil / open / closed x send / recv /
// close), FIFO order, direct hand-off, move-only values, try_* semantics,
// plain threads, and producer/consumer stress with exact totals.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

TEST(Chan, BufferedIsFifoAndReportsSizeAndCapacity) {
    auto ch = goro::make_chan<int>(3);
    EXPECT_EQ(ch.capacity(), 3u);
    EXPECT_EQ(ch.size(), 0u);
    ch.send(1);
    ch.send(2);
    ch.send(3);
    EXPECT_EQ(ch.size(), 3u);
    EXPECT_FALSE(ch.try_send(4));
    EXPECT_EQ(*ch.recv(), 1);
    EXPECT_EQ(*ch.recv(), 2);
    EXPECT_TRUE(ch.try_send(4));
    EXPECT_EQ(*ch.recv(), 3);
    EXPECT_EQ(*ch.recv(), 4);
    EXPECT_EQ(ch.size(), 0u);
}

TEST(Chan, UnbufferedRendezvous) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<std::string>();
        EXPECT_EQ(ch.capacity(), 0u);
        EXPECT_FALSE(ch.try_send("nobody is receiving"));
        std::atomic<bool> sent{false};
        goro::wait_group wg;
        wg.go([&] {
            ch.send("hello");
            sent = true;
        });
        goro::sleep_for(10ms);
        EXPECT_FALSE(sent.load()) << "an unbuffered send completed without a receiver";
        EXPECT_EQ(*ch.recv(), "hello");
        wg.wait();
        EXPECT_TRUE(sent.load());
    });
}

TEST(Chan, CloseDrainsThenNullopt) {
    auto ch = goro::make_chan<int>(2);
    ch.send(7);
    ch.close();
    EXPECT_EQ(*ch.recv(), 7);
    EXPECT_FALSE(ch.recv().has_value());
    EXPECT_FALSE(ch.recv().has_value());
    auto r = ch.try_recv();
    EXPECT_FALSE(r);
    EXPECT_TRUE(r.closed());
    EXPECT_FALSE(r.empty());
}

TEST(Chan, MisuseThrowsNamingTheCall) {
    auto ch = goro::make_chan<int>(1);
    ch.close();
    try {
        ch.send(1);
        FAIL() << "send on closed channel did not throw";
    } catch (const goro::closed_channel_error& e) {
        EXPECT_NE(std::string(e.what()).find("send"), std::string::npos) << e.what();
    }
    try {
        ch.close();
        FAIL() << "close of closed channel did not throw";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("goro::chan::close"), std::string::npos) << e.what();
    }
    goro::chan<int> nil;
    EXPECT_TRUE(nil.is_nil());
    EXPECT_THROW(nil.close(), goro::closed_channel_error);
    EXPECT_THROW(ch.try_send(1), goro::closed_channel_error);  // as a send in select-default
}

TEST(Chan, NilChannelNeverReadyAndBlocksForever) {
    goro::chan<int> nil;
    EXPECT_FALSE(nil.try_send(1));
    auto r = nil.try_recv();
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(nil.size(), 0u);
    EXPECT_EQ(nil.capacity(), 0u);
    static std::atomic<int> unwound{0};
    unwound = 0;
    goro::run(procs(2), [nil] {
        goro::go([nil] {
            struct guard {
                ~guard() { unwound.fetch_add(1); }
            } g;
            nil.send(1);
            ADD_FAILURE() << "send on nil returned";
        });
        goro::go([nil] {
            struct guard {
                ~guard() { unwound.fetch_add(1); }
            } g;
            nil.recv();
            ADD_FAILURE() << "recv on nil returned";
        });
        goro::sleep_for(10ms);
    });
    EXPECT_EQ(unwound.load(), 2);  // shutdown unwound both
}

TEST(Chan, TrySendLeavesArgumentOnFailure) {
    auto ch = goro::make_chan<std::unique_ptr<int>>(1);
    auto a = std::make_unique<int>(1);
    auto b = std::make_unique<int>(2);
    EXPECT_TRUE(ch.try_send(std::move(a)));
    EXPECT_EQ(a, nullptr);
    EXPECT_FALSE(ch.try_send(std::move(b)));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(*b, 2);
    auto r = ch.try_recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(**r, 1);
    EXPECT_TRUE(ch.try_recv().empty());
}

TEST(Chan, MoveOnlyValuesThroughUnbuffered) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<std::unique_ptr<int>>();
        goro::go([ch] {
            for (int i = 0; i < 100; ++i) ch.send(std::make_unique<int>(i));
            ch.close();
        });
        int expect = 0;
        for (auto p : goro::recv_chan<std::unique_ptr<int>>(ch)) EXPECT_EQ(*p, expect++);
        EXPECT_EQ(expect, 100);
    });
}

TEST(Chan, HandlesCompareEqualAndDirectionalViews) {
    auto a = goro::make_chan<int>(1);
    auto b = a;
    auto c = goro::make_chan<int>(1);
    EXPECT_TRUE(a == b);
    EXPECT_FALSE(a == c);
    goro::send_chan<int> s = a;
    goro::recv_chan<int> r = a;
    EXPECT_TRUE(s == a);
    EXPECT_TRUE(r == b);
    s.send(5);
    EXPECT_EQ(*r.recv(), 5);
    EXPECT_TRUE(goro::chan<int>() == goro::chan<int>());
}

TEST(Chan, CloseWakesEveryBlockedReceiverAndSender) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            auto ch = goro::make_chan<int>();
            std::atomic<int> got_nullopt{0}, got_error{0};
            goro::wait_group wg;
            for (int i = 0; i < 50; ++i)
                wg.go([&] {
                    if (!ch.recv()) got_nullopt.fetch_add(1);
                });
            goro::sleep_for(5ms);
            ch.close();
            wg.wait();
            EXPECT_EQ(got_nullopt.load(), 50);

            auto ch2 = goro::make_chan<int>();
            for (int i = 0; i < 50; ++i)
                wg.go([&] {
                    try {
                        ch2.send(1);
                    } catch (const goro::closed_channel_error&) {
                        got_error.fetch_add(1);
                    }
                });
            goro::sleep_for(5ms);
            ch2.close();
            wg.wait();
            EXPECT_EQ(got_error.load(), 50);
        });
}

TEST(Chan, BlockedSendersServedInArrivalOrder) {
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<int>();
        goro::wait_group wg;
        for (int i = 0; i < 10; ++i) {
            wg.go([ch, i] { ch.send(i); });
            goro::sleep_for(1ms);  // let it block before the next one arrives
        }
        for (int i = 0; i < 10; ++i) EXPECT_EQ(*ch.recv(), i);
        wg.wait();
    });
}

TEST(Chan, BlockedReceiversServedInArrivalOrder) {
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<int>();
        auto order = goro::make_chan<int>(10);
        goro::wait_group wg;
        for (int i = 0; i < 10; ++i) {
            wg.go([ch, order, i] {
                ch.recv();
                order.send(i);
            });
            goro::sleep_for(1ms);
        }
        for (int i = 0; i < 10; ++i) {
            ch.send(0);
            EXPECT_EQ(*order.recv(), i);
        }
        wg.wait();
    });
}

TEST(Chan, FullBufferHandsBlockedSenderValueOnInOrder) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>(2);
        goro::wait_group wg;
        wg.go([ch] {
            for (int i = 0; i < 100; ++i) ch.send(i);
        });
        goro::sleep_for(5ms);  // the sender is blocked on a full buffer
        for (int i = 0; i < 100; ++i) ASSERT_EQ(*ch.recv(), i);
        wg.wait();
    });
}

TEST(Chan, PlainThreadsAndGoroutinesTogether) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>();
        const int n = static_cast<int>(scaled(2000));
        std::thread producer([&] {
            for (int i = 1; i <= n; ++i) ch.send(i);
            ch.close();
        });
        long sum = 0;
        for (int v : ch) sum += v;
        producer.join();
        EXPECT_EQ(sum, long(n) * (n + 1) / 2);
    });
    // No runtime at all: two plain threads.
    auto ch = goro::make_chan<int>();
    std::thread t([&] { ch.send(42); });
    EXPECT_EQ(*ch.recv(), 42);
    t.join();
}

class ChanStress : public ::testing::TestWithParam<std::tuple<unsigned, std::size_t>> {};
INSTANTIATE_TEST_SUITE_P(ProcsCap, ChanStress,
                         ::testing::Combine(::testing::Values(1u, 2u, 8u),
                                            ::testing::Values(std::size_t{0}, std::size_t{1},
                                                              std::size_t{128})));

TEST_P(ChanStress, EightByEightExactTotals) {
    auto [p, cap] = GetParam();
    goro::run(procs(p), [cap = cap] {
        auto ch = goro::make_chan<long>(cap);
        const long per = scaled(5000, 20);
        std::atomic<long> sum{0}, count{0};
        goro::wait_group producers, consumers;
        for (int i = 0; i < 8; ++i)
            producers.go([&, i] {
                for (long k = 0; k < per; ++k) ch.send(i * per + k);
            });
        for (int i = 0; i < 8; ++i)
            consumers.go([&] {
                for (long v : ch) {
                    sum.fetch_add(v, std::memory_order_relaxed);
                    count.fetch_add(1, std::memory_order_relaxed);
                }
            });
        producers.wait();
        ch.close();
        consumers.wait();
        const long n = 8 * per;
        EXPECT_EQ(count.load(), n);
        EXPECT_EQ(sum.load(), n * (n - 1) / 2);
    });
}

TEST(ChanStressClose, CloseRacingSendersAndReceivers) {
    goro::run(procs(2), [] {
        const int rounds = static_cast<int>(scaled(300));
        for (int r = 0; r < rounds; ++r) {
            auto ch = goro::make_chan<int>(r % 3);
            std::atomic<long> sent{0}, received{0}, refused{0};
            goro::wait_group wg;
            for (int i = 0; i < 4; ++i)
                wg.go([&] {
                    for (int k = 0; k < 50; ++k) {
                        try {
                            ch.send(1);
                            sent.fetch_add(1);
                        } catch (const goro::closed_channel_error&) {
                            refused.fetch_add(1);
                            return;
                        }
                    }
                });
            for (int i = 0; i < 4; ++i)
                wg.go([&] {
                    while (auto v = ch.recv()) received.fetch_add(*v);
                });
            goro::yield();
            ch.close();
            wg.wait();
            // Every value a sender saw accepted was received: none lost.
            ASSERT_EQ(sent.load(), received.load()) << "round " << r;
        }
    });
}
