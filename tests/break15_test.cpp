// Hostile tests of select's unlocked first pass (may_be_ready), the wake-up's
// fast path for distinct channels (dequeue_rest), the division-free shuffle
// (below) and the lazily seeded per-thread random state.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "scheduler/scheduler.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

// A generous chi-square bound with df degrees of freedom: about 8 standard
// deviations above the mean (a uniform choice fails it with probability far
// below 1e-9; a cell off by 10% with thousands of samples per cell passes it
// with none).
double chi2_bound(int df) {
    return df + 8.0 * std::sqrt(2.0 * df) + 8.0;
}

double chi2(const std::vector<long>& hits, double expected) {
    double x = 0;
    for (long h : hits)
        x += (static_cast<double>(h) - expected) * (static_cast<double>(h) - expected) / expected;
    return x;
}

}  // namespace

// Uniform choice among k ready cases, each on its own buffered channel, for
// k = 2, 3, 7, 8 and 17 (17: the heap buffers) through recv_any.
TEST(Break15, UniformOverDistinctReadyChannels) {
    for (int k : {2, 3, 7, 8, 17}) {
        std::vector<goro::chan<int>> ch;
        for (int i = 0; i < k; ++i) {
            ch.push_back(goro::make_chan<int>(1));
            ch.back().send(i);
        }
        const long per = scaled(4000, 4);
        const long n = per * k;
        std::vector<long> hits(static_cast<std::size_t>(k));
        for (long s = 0; s < n; ++s) {
            int got = -1;
            auto r = goro::select(
                goro::recv_any(ch, [&](std::size_t, std::optional<int> v) { got = *v; }));
            ASSERT_EQ(got, static_cast<int>(r.element));
            hits[r.element]++;
            ch[r.element].send(got);
        }
        EXPECT_LT(chi2(hits, static_cast<double>(per)), chi2_bound(k - 1)) << "k=" << k;
    }
}

// Consecutive choices between two ready cases are independent: the pairs
// (previous, next) are uniform over the four cells.
TEST(Break15, ConsecutiveChoicesAreIndependent) {
    auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
    a.send(0);
    b.send(1);
    const long n = scaled(80000, 4);
    std::vector<long> pairs(4);
    std::size_t prev = 2;
    for (long s = 0; s < n; ++s) {
        std::size_t i = goro::select(goro::recv_case(a), goro::recv_case(b));
        (i == 0 ? a : b).send(static_cast<int>(i));
        if (prev != 2) pairs[prev * 2 + i]++;
        prev = i;
    }
    EXPECT_LT(chi2(pairs, static_cast<double>(n - 1) / 4), chi2_bound(3));
}

// Uniform over cases, not over channels: k cases on the same channel plus
// one case on another, nil cases mixed in (they are never ready).
TEST(Break15, UniformOverCasesWithDuplicateChannelsAndNils) {
    auto dup = goro::make_chan<int>(64), other = goro::make_chan<int>(1);
    goro::chan<int> nil;
    for (int i = 0; i < 64; ++i) dup.send(i);
    other.send(0);
    for (int k : {2, 7, 16, 17}) {
        std::vector<goro::chan<int>> cs;
        for (int i = 0; i < k; ++i) {
            cs.push_back(dup);
            cs.push_back(nil);
        }
        cs.push_back(other);
        const long per = scaled(3000, 4);
        const long n = per * (k + 1);
        std::vector<long> hits(static_cast<std::size_t>(k + 1));
        for (long s = 0; s < n; ++s) {
            int got = -1;
            auto r = goro::select(
                goro::recv_any(cs, [&](std::size_t, std::optional<int> v) { got = *v; }));
            ASSERT_NE(r.element % 2 == 1 && r.element != cs.size() - 1, true) << "a nil case ran";
            const std::size_t cell =
                r.element == cs.size() - 1 ? static_cast<std::size_t>(k) : r.element / 2;
            hits[cell]++;
            cs[r.element].send(got);
        }
        EXPECT_LT(chi2(hits, static_cast<double>(per)), chi2_bound(k)) << "k=" << k;
    }
}

// A send and a receive case on the same buffered channel, both ready (the
// buffer neither empty nor full): each runs half the time; an empty buffer
// leaves only the send, a full one only the receive.
TEST(Break15, SendAndRecvOnOneBufferedChannel) {
    auto c = goro::make_chan<int>(4);
    c.send(1);
    c.send(1);
    const long n = scaled(40000, 4);
    std::vector<long> hits(2);
    for (long s = 0; s < n; ++s) {
        std::size_t i = goro::select(goro::send_case(c, 1), goro::recv_case(c));
        hits[i]++;
        if (i == 0)
            ASSERT_TRUE(c.recv());
        else
            c.send(1);
        ASSERT_EQ(c.size(), 2u);
    }
    EXPECT_LT(chi2(hits, static_cast<double>(n) / 2), chi2_bound(1));
    auto e = goro::make_chan<int>(2);
    EXPECT_EQ(goro::select(goro::send_case(e, 1), goro::recv_case(e)), 0u);
    e.send(2);  // now full
    for (int s = 0; s < 100; ++s) {
        EXPECT_EQ(goro::select(goro::send_case(e, 1), goro::recv_case(e)), 1u);
        e.send(3);
    }
}

// Selects with a default from many goroutines: a default is taken only when
// no case was ready. A receive from a channel whose buffer only these
// selects drain sees the default only once the buffer is empty, and a send
// to one with room only once it is full.
TEST(Break15, DefaultNeverTakenWhileACaseIsReady) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            for (int round = 0; round < static_cast<int>(scaled(20, 4)); ++round) {
                const int cap = 512;
                auto full = goro::make_chan<int>(cap), room = goro::make_chan<int>(cap);
                auto noise = goro::make_chan<int>(1);
                for (int i = 0; i < cap; ++i) full.send(i);
                std::atomic<int> received{0}, sent{0}, bad{0};
                goro::wait_group wg;
                for (int g = 0; g < 6; ++g)
                    wg.go([&] {
                        bool rdone = false, sdone = false;
                        while (!rdone || !sdone) {
                            if (!rdone) {
                                auto i = goro::select(goro::recv_case(full), goro::recv_case(noise),
                                                      goro::default_case());
                                if (i == 0) received.fetch_add(1);
                                if (i == 2) {
                                    rdone = true;
                                    if (full.size() != 0) bad.fetch_add(1);
                                }
                            }
                            if (!sdone) {
                                auto i = goro::select(goro::send_case(room, 1),
                                                      goro::default_case(), goro::recv_case(noise));
                                if (i == 0) sent.fetch_add(1);
                                if (i == 1) {
                                    sdone = true;
                                    if (room.size() != static_cast<std::size_t>(cap))
                                        bad.fetch_add(1);
                                }
                            }
                        }
                    });
                wg.wait();
                EXPECT_EQ(received.load(), cap);
                EXPECT_EQ(sent.load(), cap);
                EXPECT_EQ(bad.load(), 0);
            }
        });
}

// Producers send and then close; consumers poll with a default in a tight
// loop over several channels (some buffered, one unbuffered, a nil) and
// count: every value sent is received exactly once, each close seen.
TEST(Break15, PollingSelectsConserveValuesAcrossCloses) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            const int per = static_cast<int>(scaled(20000, 10));
            std::vector<goro::chan<int>> ch{goro::make_chan<int>(), goro::make_chan<int>(1),
                                            goro::make_chan<int>(7), goro::make_chan<int>(64)};
            goro::chan<int> nil;
            std::atomic<long> sum{0}, count{0};
            goro::wait_group prod, cons;
            for (std::size_t c = 0; c < ch.size(); ++c)
                prod.go([&, c] {
                    for (int k = 1; k <= per; ++k) ch[c].send(k);
                });
            for (int g = 0; g < 5; ++g)
                cons.go([&] {
                    std::array<bool, 4> closed{};
                    int nclosed = 0;
                    while (nclosed < 4) {
                        int which = -1;
                        std::optional<int> got;
                        auto on = [&](int c) {
                            return [&, c](std::optional<int> v) {
                                which = c;
                                got = v;
                            };
                        };
                        goro::select(goro::recv_case(closed[0] ? nil : ch[0], on(0)),
                                     goro::recv_case(closed[1] ? nil : ch[1], on(1)),
                                     goro::recv_case(nil, on(9)),
                                     goro::recv_case(closed[2] ? nil : ch[2], on(2)),
                                     goro::recv_case(closed[3] ? nil : ch[3], on(3)),
                                     goro::default_case());
                        if (which < 0) {  // no preemption: let the producers run
                            goro::yield();
                            continue;
                        }
                        ASSERT_NE(which, 9);
                        if (got) {
                            sum += *got;
                            ++count;
                        } else {
                            closed[static_cast<std::size_t>(which)] = true;
                            ++nclosed;
                        }
                    }
                });
            prod.wait();
            for (auto& c : ch) c.close();
            cons.wait();
            EXPECT_EQ(count.load(), 4L * per);
            EXPECT_EQ(sum.load(), 4L * per * (per + 1) / 2);
        });
}

// Blocking selects with a send and a receive case on the same unbuffered
// channel, from several goroutines at once: they pair up with each other (a
// select never matches itself); every send is received once.
TEST(Break15, SendAndRecvCasesOnOneUnbufferedChannelPairUp) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            auto c = goro::make_chan<int>(), quit = goro::make_chan<int>();
            const long target = scaled(8000, 10);
            std::atomic<long> sends{0}, recvs{0}, sum_sent{0}, sum_recv{0};
            goro::wait_group wg;
            for (int g = 0; g < 4; ++g)
                wg.go([&, g] {
                    for (int k = 0;; ++k) {
                        const int v = g * 100000 + k;
                        bool done = false;
                        goro::select(
                            goro::send_case(c, v,
                                            [&] {
                                                ++sends;
                                                sum_sent += v;
                                            }),
                            goro::recv_case(quit, [&](std::optional<int>) { done = true; }),
                            goro::recv_case(c, [&](std::optional<int> x) {
                                ++recvs;
                                sum_recv += *x;
                            }));
                        if (done) return;
                    }
                });
            while (sends.load() < target) goro::sleep_for(100us);
            quit.close();
            wg.wait();
            EXPECT_EQ(sends.load(), recvs.load());
            EXPECT_EQ(sum_sent.load(), sum_recv.load());
        });
}

// Parked selects with send cases: closing the channel makes the select throw
// closed_channel_error; receive cases on a closed channel get nullopt. Mixed
// with a case on a channel that keeps working, over many rounds.
TEST(Break15, CloseWakesParkedSelectsRightly) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            for (int round = 0; round < static_cast<int>(scaled(300, 10)); ++round) {
                auto sc = goro::make_chan<int>(), rc = goro::make_chan<int>(),
                     idle = goro::make_chan<int>(3);
                std::atomic<int> threw{0}, closed_seen{0}, other{0};
                goro::wait_group wg;
                for (int g = 0; g < 4; ++g) {
                    wg.go([&] {
                        try {
                            goro::select(goro::send_case(sc, 1), goro::recv_case(idle),
                                         goro::send_case(sc, 2));
                            ++other;
                        } catch (const goro::closed_channel_error&) {
                            ++threw;
                        }
                    });
                    wg.go([&] {
                        goro::select(goro::recv_case(idle),
                                     goro::recv_case(rc,
                                                     [&](std::optional<int> v) {
                                                         if (!v) ++closed_seen;
                                                     }),
                                     goro::recv_case(rc, [&](std::optional<int> v) {
                                         if (!v) ++closed_seen;
                                     }));
                    });
                }
                if (round % 2) goro::yield();
                sc.close();
                rc.close();
                wg.wait();
                EXPECT_EQ(threw.load(), 4);
                EXPECT_EQ(closed_seen.load(), 4);
                EXPECT_EQ(other.load(), 0);
            }
        });
}

// Timer and ticker channels among data channels, with and without default.
TEST(Break15, TimersInSelects) {
    goro::run(procs(2), [] {
        auto data = goro::make_chan<int>(1);
        goro::ticker tick(200us);
        std::atomic<bool> stop{false};
        goro::wait_group wg;
        wg.go([&] {
            int k = 0;
            while (!stop.load()) {
                goro::select(goro::send_case(data, ++k), goro::recv_case(goro::after(50us)));
            }
        });
        long ticks = 0, datas = 0, timeouts = 0, defaults = 0;
        const auto end = std::chrono::steady_clock::now() + 300ms;
        while (std::chrono::steady_clock::now() < end) {
            auto i = goro::select(goro::recv_case(tick.c()), goro::recv_case(data),
                                  goro::recv_case(goro::after(100us)));
            if (i == 0) ++ticks;
            if (i == 1) ++datas;
            if (i == 2) ++timeouts;
            auto j = goro::select(goro::recv_case(tick.c()), goro::default_case());
            if (j == 1) ++defaults;
        }
        stop.store(true);
        while (data.try_recv()) {
        }
        wg.wait();
        EXPECT_GT(ticks, 0);
        EXPECT_GT(datas, 0);
    });
}

// A select parked over 19 distinct channels (heap buffers), woken by one,
// while the other goroutine drops its handles to the rest, in loops.
TEST(Break15, OrphanedChannelsUnderAWokenSelect) {
    for (unsigned p : {1u, 2u, 8u})
        goro::run(procs(p), [] {
            for (int round = 0; round < static_cast<int>(scaled(2000, 10)); ++round) {
                auto fire = goro::make_chan<int>();
                auto holder = std::make_shared<std::vector<goro::chan<int>>>();
                for (int i = 0; i < 18; ++i) holder->push_back(goro::make_chan<int>(i % 2));
                std::vector<goro::chan<int>*> raw;
                for (auto& c : *holder) raw.push_back(&c);
                goro::wait_group wg;
                std::atomic<int> got{-1};
                // The select reads the cores through its own handles.
                std::vector<goro::chan<int>> mine(holder->begin(), holder->end());
                mine.push_back(fire);
                wg.go([&, mine = std::move(mine)]() mutable {
                    auto r = goro::select(goro::recv_any(
                        mine, [&](std::size_t, std::optional<int> v) { got = v.value_or(-2); }));
                    (void)r;
                    mine.clear();  // drop this goroutine's handles too
                });
                if (round % 3 == 0) goro::yield();
                holder.reset();  // others' handles gone
                fire.send(round);
                wg.wait();
                EXPECT_EQ(got.load(), round);
            }
        });
}

// Many goroutines parked in selects (distinct channels, duplicate ones,
// more than 16 cases) when run() returns: the shutdown unwinds them all.
TEST(Break15, ShutdownWithManyParkedSelects) {
    for (unsigned p : {1u, 2u, 8u})
        for (int rep = 0; rep < static_cast<int>(scaled(20, 4)); ++rep) {
            std::atomic<int> unwound{0}, started{0};
            goro::run(procs(p), [&] {
                std::vector<goro::chan<int>> ch;
                for (int i = 0; i < 20; ++i) ch.push_back(goro::make_chan<int>(i % 3));
                for (int g = 0; g < 60; ++g)
                    goro::go([&unwound, &started, ch, g] {
                        ++started;
                        struct count {
                            std::atomic<int>& n;
                            ~count() { ++n; }
                        } c{unwound};
                        std::vector<goro::chan<int>> cs;
                        if (g % 3 == 0)
                            cs = ch;
                        else if (g % 3 == 1)
                            cs = {ch[0], ch[1], ch[0], ch[2]};
                        else
                            cs = {ch[static_cast<std::size_t>(g % 20)]};
                        goro::select(goro::recv_any(cs), goro::recv_case(ch[19]));
                    });
                goro::yield();
            });
            EXPECT_EQ(unwound.load(), started.load());
            EXPECT_GT(started.load(), 0);
        }
}

// --- Shutdown's spinner watch (run via ctest only: one test per process) ---
//
// A spinner that watches its own worker's `current` and parks (or yields)
// the moment the shutdown tags it as a spinner (bit 0), before or just as
// the shutdown forgets its thread: the park must neither crash nor keep
// run() from returning, and a later run() works.
namespace {

struct b15_spin {
    std::atomic<int> started{0};
    std::atomic<int> parked_tagged{0};  // saw the tag with its worker still known
    std::atomic<int> parked_forgotten{0};
};
b15_spin& b15() {
    static b15_spin* f = new b15_spin;  // leaked: frozen threads may read it
    return *f;
}

void spin_until_tagged_then(int how, int delay_spins) {
    b15_spin& f = b15();
    f.started.fetch_add(1);
    for (;;) {
        goro::detail::worker* w = goro::detail::this_worker();
        if (!w) {
            f.parked_forgotten.fetch_add(1);
            break;
        }
        if (reinterpret_cast<std::uintptr_t>(w->current.load(std::memory_order_relaxed)) & 1) {
            f.parked_tagged.fetch_add(1);
            break;
        }
    }
    for (int i = 0; i < delay_spins; ++i) asm volatile("" ::: "memory");
    static goro::chan<int>* never_a = new goro::chan<int>(goro::make_chan<int>());
    static goro::chan<int>* never_b = new goro::chan<int>(goro::make_chan<int>(1));
    switch (how) {
        case 0:
            goro::select(goro::recv_case(*never_a), goro::send_case(*never_a, 1),
                         goro::recv_case(goro::after(1h)));
            break;
        case 1:
            (void)never_a->recv();
            break;
        case 2:
            goro::yield();
            break;
        case 3:
            goro::sleep_for(1ms);
            break;
        default:
            goro::select(goro::recv_case(*never_a), goro::recv_case(*never_b),
                         goro::default_case());
            break;
    }
}

}  // namespace

TEST(SpinnerShutdownBreak15, ParkJustAsTaggedOrForgotten) {
    for (int attempt = 0; attempt < 10; ++attempt) {
        const int how = attempt % 5;
        const int delay = (attempt / 5) * 2000;
        testing::internal::CaptureStderr();
        const auto t0 = std::chrono::steady_clock::now();
        goro::run(procs(2), [&] {
            const int before = b15().started.load();
            goro::go([how, delay] { spin_until_tagged_then(how, delay); });
            while (b15().started.load() == before) goro::sleep_for(1ms);
        });
        const auto took = std::chrono::steady_clock::now() - t0;
        const std::string err = testing::internal::GetCapturedStderr();
        EXPECT_LT(took, 10s) << "attempt " << attempt;
        EXPECT_NE(err.find("without blocking"), std::string::npos) << err;
        EXPECT_EQ(goro_test::value_through_a_fresh_run(), 42) << "attempt " << attempt;
    }
    std::fprintf(stderr, "tagged %d forgotten %d\n", b15().parked_tagged.load(),
                 b15().parked_forgotten.load());
}
