// Tests of the mixed select (goro/select.hpp): case groups — recv_any over a
// runtime-sized range of channels, dynamic_cases over select_case<T>s —
// among fixed cases of other element types (ctx.done(), a ticker, sends)
// and a default, in one select. Each kind of case fires and delivers its
// value; closed elements report closed; the choice is uniform over every
// ready case, group elements included; a blocked select wakes for each kind
// of case; stress with many goroutines and several selects at once over the
// same channels; closes and handle drops racing the select.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

struct msg {
    int from = -1;
    std::string text;
};

std::vector<goro::chan<msg>> make_subs(std::size_t n, std::size_t cap) {
    std::vector<goro::chan<msg>> subs;
    for (std::size_t i = 0; i < n; ++i) subs.push_back(goro::make_chan<msg>(cap));
    return subs;
}

}  // namespace

TEST(SelectMixed, GroupElementFiresWithItsValueAndPosition) {
    auto subs = make_subs(5, 1);
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    goro::ticker tick(1h);
    subs[3].send(msg{3, "three"});
    std::size_t got_j = 99;
    std::optional<msg> got;
    goro::select_result r = goro::select(
        goro::recv_case(ctx.done(), [](auto) { ADD_FAILURE() << "done fired"; }),
        goro::recv_any(subs,
                       [&](std::size_t j, std::optional<msg> m) {
                           got_j = j;
                           got = std::move(m);
                       }),
        goro::recv_case(tick.c(), [](goro::clock::time_point) { ADD_FAILURE() << "tick"; }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, 3u);
    EXPECT_EQ(std::size_t(r), 1u);
    EXPECT_EQ(got_j, 3u);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->from, 3);
    EXPECT_EQ(got->text, "three");
    cancel();
}

TEST(SelectMixed, FixedCasesFireAndReportNoElement) {
    auto subs = make_subs(3, 1);
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    cancel();
    bool done = false;
    auto r = goro::select(goro::recv_any(subs), goro::recv_case(ctx.done(), [&](auto v) {
                              done = !v.has_value();  // done() is closed: nullopt
                          }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, goro::select_result::none);
    EXPECT_TRUE(done);

    goro::ticker tick(1ms);
    goro::clock::time_point t{};
    r = goro::select(goro::recv_any(subs),
                     goro::recv_case(tick.c(), [&](goro::clock::time_point v) { t = v; }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, goro::select_result::none);
    EXPECT_NE(t, goro::clock::time_point{});

    auto out = goro::make_chan<int>(1);
    bool sent = false;
    r = goro::select(goro::recv_any(subs), goro::send_case(out, 42, [&] { sent = true; }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(*out.recv(), 42);

    bool dflt = false;
    r = goro::select(goro::recv_any(subs, [](std::size_t) { ADD_FAILURE(); }),
                     goro::default_case([&] { dflt = true; }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, goro::select_result::none);
    EXPECT_TRUE(dflt);
}

TEST(SelectMixed, ClosedElementReportsClosed) {
    auto subs = make_subs(4, 0);
    subs[2].close();
    std::size_t j = 99;
    bool closed = false;
    auto r = goro::select(goro::recv_any(subs, [&](std::size_t e, std::optional<msg> m) {
        j = e;
        closed = !m;
    }));
    EXPECT_EQ(r.element, 2u);
    EXPECT_EQ(j, 2u);
    EXPECT_TRUE(closed);
    // A handler taking T gets the zero value for a closed channel.
    int v = -1;
    std::vector<goro::chan<int>> ints{goro::make_chan<int>()};
    ints[0].close();
    goro::select(goro::recv_any(ints, [&](std::size_t, int x) { v = x; }));
    EXPECT_EQ(v, 0);
}

TEST(SelectMixed, NilElementsAndEmptyGroupsAreNeverReady) {
    std::vector<goro::chan<int>> nils(3);
    std::vector<goro::chan<int>> none;
    auto r = goro::select(goro::recv_any(nils), goro::recv_any(none), goro::default_case());
    EXPECT_EQ(r.index, 2u);
    auto ready = goro::make_chan<int>(1);
    ready.send(1);
    nils.push_back(ready);
    r = goro::select(goro::recv_any(none), goro::recv_any(nils), goro::default_case());
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, 3u);
}

TEST(SelectMixed, OtherRangesAndRvalueRanges) {
    auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
    b.send(7);
    std::list<goro::recv_chan<int>> l{a, b};  // a forward, non-contiguous range
    int got = 0;
    auto r = goro::select(goro::recv_any(l, [&](std::size_t, std::optional<int> v) { got = *v; }));
    EXPECT_EQ(r.element, 1u);
    EXPECT_EQ(got, 7);
    a.send(8);
    // The range is moved into the case: no dangling temporary.
    auto c = goro::recv_any(std::vector<goro::chan<int>>{b, a},
                            [&](std::size_t, std::optional<int> v) { got = *v; });
    r = goro::select(c);
    EXPECT_EQ(r.element, 1u);
    EXPECT_EQ(got, 8);
    std::array<goro::chan<int>, 2> arr{a, b};
    a.send(9);
    r = goro::select(goro::recv_any(std::span(arr)), goro::default_case());
    EXPECT_EQ(r.index, 0u);
    EXPECT_EQ(r.element, 0u);
}

TEST(SelectMixed, DynamicCasesWithSendsAmongFixedCases) {
    auto in = goro::make_chan<int>(1), out = goro::make_chan<int>(1);
    std::vector<goro::select_case<int>> cases;
    cases.push_back(goro::select_case<int>::recv(in));
    cases.push_back(goro::select_case<int>::send(out, 5));
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::size_t fired = 99;
    auto r = goro::select(goro::recv_case(ctx.done()),
                          goro::dynamic_cases(cases, [&](std::size_t j) { fired = j; }));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.element, 1u);  // only the send was ready
    EXPECT_EQ(fired, 1u);
    EXPECT_FALSE(cases[1].value().has_value());  // sent
    EXPECT_EQ(*out.recv(), 5);
    in.send(6);
    r = goro::select(goro::recv_case(ctx.done()), goro::dynamic_cases(cases));
    EXPECT_EQ(r.element, 0u);
    EXPECT_EQ(cases[0].value(), std::optional<int>(6));
    cancel();
    r = goro::select(goro::recv_case(ctx.done()), goro::dynamic_cases(cases));
    EXPECT_EQ(r.index, 0u);  // the sent send case is skipped, in is empty
}

TEST(SelectMixed, SendOnClosedFixedCaseThrows) {
    auto subs = make_subs(2, 0);
    auto out = goro::make_chan<int>(1);
    out.close();
    EXPECT_THROW(goro::select(goro::recv_any(subs), goro::send_case(out, 1)),
                 goro::closed_channel_error);
}

// Uniform over every ready case: 4 ready group elements + 2 ready fixed
// cases of other types = 6 cases, each ~1/6.
TEST(SelectMixed, ChoosesUniformlyAmongGroupAndFixedCases) {
    auto subs = make_subs(4, 1);
    auto flag = goro::make_chan<goro::unit>(1);
    auto text = goro::make_chan<std::string>(1);
    std::array<int, 6> hits{};
    const int n = 30000;
    for (int k = 0; k < n; ++k) {
        for (auto& s : subs) s.try_send(msg{});
        flag.try_send(goro::unit{});
        text.try_send(std::string("x"));
        auto r = goro::select(goro::recv_case(flag), goro::recv_any(subs), goro::recv_case(text));
        std::size_t slot = r.index == 0 ? 0 : r.index == 2 ? 5 : 1 + r.element;
        hits[slot]++;
    }
    for (int h : hits) {
        EXPECT_GT(h, n / 6 - n / 40) << "biased choice";
        EXPECT_LT(h, n / 6 + n / 40) << "biased choice";
    }
}

// A parked select is woken by each kind of case.
TEST(SelectMixed, BlockedSelectWokenByEachKindOfCase) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            for (int kind = 0; kind < 5; ++kind) {
                auto subs = make_subs(6, 0);
                auto [ctx, cancel] = goro::with_cancel(goro::background());
                goro::ticker tick(kind == 2 ? 3ms : 1h);
                auto out = goro::make_chan<int>();
                int sent_value = 17;
                goro::go([=, cancel = cancel] {
                    goro::sleep_for(3ms);
                    switch (kind) {
                        case 0:
                            subs[4].send(msg{4, "hi"});
                            break;
                        case 1:
                            cancel();
                            break;
                        case 2:
                            break;  // the ticker ticks
                        case 3:
                            EXPECT_EQ(*out.recv(), 17);
                            break;
                        case 4:
                            subs[5].close();
                            break;
                    }
                });
                std::optional<msg> m;
                std::size_t j = 99;
                auto r = goro::select(goro::recv_any(subs,
                                                     [&](std::size_t e, std::optional<msg> v) {
                                                         j = e;
                                                         m = std::move(v);
                                                     }),
                                      goro::recv_case(ctx.done()), goro::recv_case(tick.c()),
                                      goro::send_case(out, std::move(sent_value)));
                switch (kind) {
                    case 0:
                        EXPECT_EQ(r.index, 0u);
                        EXPECT_EQ(j, 4u);
                        ASSERT_TRUE(m);
                        EXPECT_EQ(m->text, "hi");
                        break;
                    case 1:
                        EXPECT_EQ(r.index, 1u);
                        break;
                    case 2:
                        EXPECT_EQ(r.index, 2u);
                        break;
                    case 3:
                        EXPECT_EQ(r.index, 3u);
                        break;
                    case 4:
                        EXPECT_EQ(r.index, 0u);
                        EXPECT_EQ(j, 5u);
                        EXPECT_FALSE(m.has_value());
                        break;
                }
                cancel();
            }
        });
}

// Producers on their own channels, several consumers each selecting over a
// copy of the whole vector plus ctx.done() and a ticker: every value is
// received exactly once, every close seen by each consumer.
TEST(SelectMixedStress, ManyProducersSeveralConsumers) {
    const int producers = 64, consumers = 3;
    constexpr long per = scaled(300);
    for (unsigned p : {1u, 2u}) {
        std::atomic<long> total{0}, count{0}, ticks{0};
        goro::run(procs(p), [&] {
            std::vector<goro::chan<long>> chans;
            for (int i = 0; i < producers; ++i) chans.push_back(goro::make_chan<long>(i % 3));
            auto [ctx, cancel] = goro::with_cancel(goro::background());
            goro::wait_group wg;
            for (int i = 0; i < producers; ++i)
                wg.go([ch = chans[i], i] {
                    for (long k = 1; k <= per; ++k) ch.send(i * 100000 + k);
                    ch.close();
                });
            goro::wait_group cw;
            for (int c = 0; c < consumers; ++c)
                cw.go([chans, ctx = ctx, &total, &count, &ticks]() mutable {
                    goro::ticker tick(1ms);
                    std::size_t open = chans.size();
                    while (open > 0) {
                        goro::select(goro::recv_any(chans,
                                                    [&](std::size_t j, std::optional<long> v) {
                                                        if (!v) {
                                                            chans[j] = {};  // nil: never again
                                                            --open;
                                                            return;
                                                        }
                                                        total += *v;
                                                        ++count;
                                                    }),
                                     goro::recv_case(ctx.done(), [](auto) { ADD_FAILURE(); }),
                                     goro::recv_case(tick.c(), [&](auto) { ++ticks; }));
                    }
                });
            wg.wait();
            cw.wait();
            cancel();
        });
        long want = 0;
        for (int i = 0; i < producers; ++i)
            for (long k = 1; k <= per; ++k) want += i * 100000 + k;
        EXPECT_EQ(count.load(), producers * per);
        EXPECT_EQ(total.load(), want);
    }
}

// Selects parked on a group are all woken by closes, each seeing closed.
TEST(SelectMixedStress, CloseWhileBlocked) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            for (long round = 0; round < scaled(200); ++round) {
                auto subs = make_subs(8, 0);
                std::atomic<int> closed{0};
                goro::wait_group wg;
                for (int s = 0; s < 3; ++s)
                    wg.go([subs, &closed] {
                        auto never = goro::make_chan<int>();
                        goro::select(goro::recv_case(never),
                                     goro::recv_any(subs, [&](std::size_t, std::optional<msg> m) {
                                         if (!m) ++closed;
                                     }));
                    });
                // Closed before, during or after the selects park.
                if (round % 3 == 1) goro::yield();
                if (round % 3 == 2) goro::sleep_for(200us);
                for (auto& s : subs) s.close();
                wg.wait();
                EXPECT_EQ(closed.load(), 3);
            }
        });
}

// The only handles go away right after the other side's last operation:
// the receiver's range is moved into its case, the sender drops its handle
// after sending; a blocked select keeps the channel alive.
TEST(SelectMixedStress, HandlesDroppedAroundTheLastOperation) {
    for (unsigned p : {1u, 2u})
        goro::run(procs(p), [] {
            std::atomic<long> got{0};
            goro::wait_group wg;
            for (long round = 0; round < scaled(2000); ++round) {
                auto ch = goro::make_chan<std::unique_ptr<long>>(round % 2);
                std::vector<goro::chan<std::unique_ptr<long>>> v{
                    ch, goro::chan<std::unique_ptr<long>>()};
                wg.go([v = std::move(v), &got]() mutable {
                    goro::select(goro::recv_any(std::move(v),
                                                [&](std::size_t j, auto m) {
                                                    EXPECT_EQ(j, 0u);
                                                    if (m && *m) got += **m;
                                                }),
                                 goro::recv_case(goro::recv_chan<int>()));
                });
                wg.go([ch = std::move(ch), round]() mutable {
                    if (round % 3 == 0) goro::yield();
                    auto c = std::move(ch);
                    c.send(std::make_unique<long>(1));
                });  // the closure (the sender's last handle) dies right after the send
            }
            wg.wait();
            EXPECT_EQ(got.load(), scaled(2000));
        });
}

// A plain thread's mixed select blocks its thread and is woken by a group.
TEST(SelectMixed, FromPlainThread) {
    auto subs = make_subs(3, 0);
    std::thread t([subs] {
        std::this_thread::sleep_for(5ms);
        subs[1].send(msg{1, "x"});
    });
    auto r = goro::select(goro::recv_any(subs), goro::recv_case(goro::after(1h)));
    EXPECT_EQ(r.element, 1u);
    t.join();
}

// A group of thousands of channels: the one that gets a value is the one
// reported, blocked or not.
TEST(SelectMixedStress, ThousandsOfChannels) {
    goro::run(procs(2), [] {
        const std::size_t n = 5000;
        std::vector<goro::chan<std::size_t>> chans;
        for (std::size_t i = 0; i < n; ++i) chans.push_back(goro::make_chan<std::size_t>(i % 2));
        for (std::size_t round = 0; round < static_cast<std::size_t>(scaled(200, 4)); ++round) {
            const std::size_t target = (round * 7919) % n;
            goro::go([ch = chans[target], target] { ch.send(target); });
            std::size_t got = 0;
            auto never = goro::make_chan<int>();
            auto r = goro::select(
                goro::recv_case(never),
                goro::recv_any(chans,
                               [&](std::size_t, std::optional<std::size_t> v) { got = *v; }));
            EXPECT_EQ(r.index, 1u);
            EXPECT_EQ(r.element, target);
            EXPECT_EQ(got, target);
        }
    });
}
