// Tests of channel handles as values and as ranges: identity comparison,
// ordering and hashing (chan, send_chan and recv_chan of one channel are
// one key), and std::ranges::input_range whose iterator receives only the
// values it hands out (views::take(n) leaves the rest in the channel).
#include <gtest/gtest.h>

#include <algorithm>
#include <compare>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <ranges>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;

// --- identity: equality, order, hash -------------------------------------

static_assert(std::equality_comparable<goro::chan<int>>);
static_assert(std::totally_ordered<goro::chan<int>>);
static_assert(std::totally_ordered<goro::send_chan<int>>);
static_assert(std::totally_ordered<goro::recv_chan<int>>);
static_assert(std::three_way_comparable<goro::chan<int>, std::strong_ordering>);
static_assert(std::equality_comparable_with<goro::chan<int>, goro::send_chan<int>>);
static_assert(std::totally_ordered_with<goro::chan<int>, goro::recv_chan<int>>);
// Different element types are different channels: no comparison at all.
static_assert(!std::equality_comparable_with<goro::chan<int>, goro::chan<long>>);

TEST(ChanIdentity, CopiesAndViewsOfOneChannelAreEqual) {
    auto a = goro::make_chan<int>(1);
    auto copy = a;
    goro::send_chan<int> s = a;
    goro::recv_chan<int> r = a;
    EXPECT_TRUE(a == copy);
    EXPECT_TRUE(a == s);
    EXPECT_TRUE(s == a);
    EXPECT_TRUE(a == r);
    EXPECT_TRUE(r == s);
    EXPECT_FALSE(a != r);
    EXPECT_EQ(a <=> s, std::strong_ordering::equal);
    EXPECT_FALSE(a < r);
    EXPECT_FALSE(r < a);
}

TEST(ChanIdentity, DistinctChannelsDifferAndAreStrictlyOrdered) {
    auto a = goro::make_chan<int>();
    auto b = goro::make_chan<int>();  // same capacity, same (no) contents
    goro::chan<int> nil1, nil2;
    EXPECT_FALSE(a == b);
    EXPECT_TRUE(a != b);
    EXPECT_NE(a < b, b < a);  // exactly one is first
    EXPECT_EQ(a < b, goro::send_chan<int>(a) < goro::recv_chan<int>(b));
    EXPECT_TRUE(nil1 == nil2);
    EXPECT_TRUE(nil1 < a);  // the nil channel first
    EXPECT_TRUE(nil1 < b);
    EXPECT_FALSE(a == nil1);
}

TEST(ChanIdentity, HashFollowsEquality) {
    auto a = goro::make_chan<int>(4);
    auto b = goro::make_chan<int>(4);
    const std::size_t h = std::hash<goro::chan<int>>{}(a);
    EXPECT_EQ(h, std::hash<goro::chan<int>>{}(goro::chan<int>(a)));
    EXPECT_EQ(h, std::hash<goro::send_chan<int>>{}(a));
    EXPECT_EQ(h, std::hash<goro::recv_chan<int>>{}(a));
    EXPECT_EQ(std::hash<goro::chan<int>>{}(goro::chan<int>()),
              std::hash<goro::recv_chan<int>>{}(goro::recv_chan<int>()));
    // Not a proof of a good hash, but two live channels must not collide
    // through a constant hash.
    EXPECT_NE(h, std::hash<goro::chan<int>>{}(b));
}

TEST(ChanIdentity, KeysOfOrderedAndUnorderedContainers) {
    std::vector<goro::chan<int>> chans;
    for (int i = 0; i < 16; ++i) chans.push_back(goro::make_chan<int>(1));

    std::set<goro::chan<int>> set;
    std::unordered_set<goro::chan<int>> uset;
    std::map<goro::recv_chan<int>, int> index;
    std::unordered_map<goro::send_chan<int>, int> uindex;
    for (int round = 0; round < 2; ++round)  // the second round inserts copies
        for (int i = 0; i < 16; ++i) {
            goro::chan<int> copy = chans[static_cast<std::size_t>(i)];
            set.insert(copy);
            uset.insert(copy);
            index.emplace(copy, i);
            uindex.emplace(copy, i);
        }
    EXPECT_EQ(set.size(), 16u);
    EXPECT_EQ(uset.size(), 16u);
    EXPECT_EQ(index.size(), 16u);
    EXPECT_EQ(uindex.size(), 16u);
    for (int i = 0; i < 16; ++i) {
        const auto& c = chans[static_cast<std::size_t>(i)];
        EXPECT_EQ(index.at(c), i);  // found through a chan converted to recv_chan
        EXPECT_EQ(uindex.at(c), i);
        EXPECT_EQ(uset.count(c), 1u);
    }
    EXPECT_EQ(uset.count(goro::make_chan<int>(1)), 0u);
    EXPECT_TRUE(std::is_sorted(set.begin(), set.end()));
}

// The use that motivates keys: which input of a dynamic select fired,
// found by the channel rather than by position.
TEST(ChanIdentity, MapFromChannelToNameInADynamicSelect) {
    goro::run(procs(2), [] {
        std::map<goro::recv_chan<int>, std::string> name;
        std::vector<goro::chan<int>> inputs;
        for (const char* n : {"alpha", "beta", "gamma"}) {
            inputs.push_back(goro::make_chan<int>(1));
            name[inputs.back()] = n;
        }
        inputs[1].send(7);
        std::vector<goro::select_case<int>> cases;
        for (auto& in : inputs) cases.push_back(goro::select_case<int>::recv(in));
        const std::size_t i = goro::select(cases);
        EXPECT_EQ(name.at(inputs[i]), "beta");
        EXPECT_EQ(cases[i].value(), 7);
    });
}

// --- ranges ---------------------------------------------------------------

static_assert(std::ranges::input_range<goro::chan<int>>);
static_assert(std::ranges::input_range<goro::recv_chan<int>>);
static_assert(std::ranges::input_range<const goro::chan<int>>);
static_assert(std::ranges::input_range<goro::chan<std::unique_ptr<int>>>);
static_assert(!std::ranges::forward_range<goro::chan<int>>);  // values are consumed
// size() is len(ch), not the length of the range.
static_assert(!std::ranges::sized_range<goro::chan<int>>);
static_assert(!std::ranges::sized_range<goro::recv_chan<int>>);
static_assert(std::input_iterator<std::ranges::iterator_t<goro::chan<int>>>);
static_assert(std::input_iterator<std::ranges::iterator_t<goro::chan<std::unique_ptr<int>>>>);
static_assert(std::same_as<std::ranges::range_value_t<goro::recv_chan<int>>, int>);
static_assert(std::ranges::viewable_range<goro::chan<int>&>);
static_assert(!std::ranges::range<goro::send_chan<int>>);  // a send end has nothing to give

// clang 14 cannot compile libstdc++ 12's range adaptors at all (even
// `std::vector<int>{} | std::views::take(1)` fails inside <ranges>), so the
// tests that pipe a channel into std::views run under g++ (and newer
// clangs); the iterator itself is tested everywhere through
// std::counted_iterator, ranges::copy_n and ranges::advance, which is what
// views::take is built on.
#if defined(__clang__) && __clang_major__ < 15 && defined(__GLIBCXX__)
#define GORO_TEST_STD_VIEWS 0
#else
#define GORO_TEST_STD_VIEWS 1
#endif

namespace {

goro::chan<int> buffered_with(int n) {
    auto ch = goro::make_chan<int>(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ch.send(i);
    return ch;
}

}  // namespace

#if GORO_TEST_STD_VIEWS
TEST(ChanRange, TakeThreeLeavesTheFourthInTheChannel) {
    goro::run(procs(2), [] {
        auto ch = buffered_with(5);
        std::vector<int> got;
        for (int v : ch | std::views::take(3)) got.push_back(v);
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
        EXPECT_EQ(ch.size(), 2u);
        EXPECT_EQ(ch.recv(), 3);  // the 4th is still there, in order
        EXPECT_EQ(ch.recv(), 4);
    });
}

TEST(ChanRange, TakeFromARecvChanView) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(5);
        goro::recv_chan<int> r = ch;
        std::vector<int> got;
        std::ranges::copy(r | std::views::take(2), std::back_inserter(got));
        EXPECT_EQ(got, (std::vector<int>{0, 1}));
        EXPECT_EQ(ch.size(), 3u);
    });
}

TEST(ChanRange, TakeFromAnUnbufferedChannelLosesNothing) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>();
        goro::go([ch] {
            for (int i = 0; i < 10; ++i) ch.send(i);
            ch.close();
        });
        std::vector<int> got;
        for (int v : ch | std::views::take(3)) got.push_back(v);
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
        // The producer is blocked sending 3: nothing was received and lost.
        EXPECT_EQ(ch.recv(), 3);
        std::vector<int> rest;
        std::ranges::copy(ch, std::back_inserter(rest));  // until closed
        EXPECT_EQ(rest, (std::vector<int>{4, 5, 6, 7, 8, 9}));
    });
}

TEST(ChanRange, TakeMoreThanAClosedChannelHolds) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(2);
        ch.close();
        std::vector<int> got;
        for (int v : ch | std::views::take(5)) got.push_back(v);
        EXPECT_EQ(got, (std::vector<int>{0, 1}));
    });
}

TEST(ChanRange, DropThenTakeReceivesOnlyWhatItSkipsAndTakes) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(5);
        std::vector<int> got;
        for (int v : ch | std::views::drop(2) | std::views::take(1)) got.push_back(v);
        EXPECT_EQ(got, (std::vector<int>{2}));
        EXPECT_EQ(ch.size(), 2u);
        EXPECT_EQ(ch.recv(), 3);
    });
}

TEST(ChanRange, TransformAndTakeWhile) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(5);
        std::vector<int> got;
        auto squares = ch | std::views::transform([](int v) { return v * v; }) |
                       std::views::take_while([](int sq) { return sq < 4; });
        for (int sq : squares) got.push_back(sq);
        EXPECT_EQ(got, (std::vector<int>{0, 1}));
        // take_while must look at a value to reject it: 2 was consumed, 3 and 4 remain.
        EXPECT_EQ(ch.size(), 2u);
    });
}
#endif  // GORO_TEST_STD_VIEWS

// What views::take(3) does, spelled with the iterator it is built on.
TEST(ChanRange, CountedIteratorTakesExactlyThree) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(5);
        std::vector<int> got;
        for (std::counted_iterator it(ch.begin(), 3); it != std::default_sentinel; ++it)
            got.push_back(*it);
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
        EXPECT_EQ(ch.size(), 2u);
        EXPECT_EQ(ch.recv(), 3);
    });
}

TEST(ChanRange, CopyNFromAnUnbufferedChannelLosesNothing) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>();
        goro::go([ch] {
            for (int i = 0; i < 6; ++i) ch.send(i);
            ch.close();
        });
        std::vector<int> got;
        std::ranges::copy_n(ch.begin(), 3, std::back_inserter(got));
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
        EXPECT_EQ(ch.recv(), 3);  // the producer still holds it: nothing was lost
        got.clear();
        std::ranges::copy(ch, std::back_inserter(got));  // the rest, until closed
        EXPECT_EQ(got, (std::vector<int>{4, 5}));
    });
}

TEST(ChanRange, MoveOnlyValuesThroughACountedIterator) {
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<std::unique_ptr<int>>(3);
        for (int i = 0; i < 3; ++i) ch.send(std::make_unique<int>(i));
        std::vector<std::unique_ptr<int>> got;
        for (std::counted_iterator it(ch.begin(), 2); it != std::default_sentinel; ++it)
            got.push_back(*it);  // *it is an rvalue: moved out
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(*got[1], 1);
        EXPECT_EQ(ch.size(), 1u);
    });
}

TEST(ChanRange, BeginReceivesNothingUntilLookedAt) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(3);
        auto it = ch.begin();
        EXPECT_EQ(ch.size(), 3u);  // begin() alone received nothing
        EXPECT_FALSE(it == ch.end());
        EXPECT_EQ(ch.size(), 2u);  // comparing with the end received one...
        EXPECT_EQ(*it, 0);
        EXPECT_EQ(*it, 0);  // ...and looking again does not receive another
        EXPECT_EQ(ch.size(), 2u);
        ++it;
        EXPECT_EQ(ch.size(), 2u);  // ++ after a look receives nothing
        EXPECT_EQ(*it, 1);
        EXPECT_EQ(ch.size(), 1u);
    });
}

TEST(ChanRange, AdvanceWithoutLookingSkipsValues) {
    goro::run(procs(1), [] {
        auto ch = buffered_with(5);
        auto it = ch.begin();
        std::ranges::advance(it, 2);  // ++ twice, no comparison: 0 and 1 skipped
        EXPECT_EQ(*it, 2);
        EXPECT_EQ(ch.size(), 2u);
    });
}

#if GORO_TEST_STD_VIEWS
TEST(ChanRange, MoveOnlyValuesMoveThroughTake) {
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<std::unique_ptr<int>>(4);
        for (int i = 0; i < 4; ++i) ch.send(std::make_unique<int>(i));
        std::vector<std::unique_ptr<int>> got;
        for (std::unique_ptr<int> p : ch | std::views::take(2)) got.push_back(std::move(p));
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(*got[0], 0);
        EXPECT_EQ(*got[1], 1);
        EXPECT_EQ(ch.size(), 2u);
        auto third = ch.recv();
        ASSERT_TRUE(third.has_value());
        EXPECT_EQ(**third, 2);
    });
}
#endif  // GORO_TEST_STD_VIEWS

TEST(ChanRange, RangeForStillDrainsUntilClosed) {
    goro::run(procs(2), [] {
        auto ch = goro::make_chan<int>(2);
        goro::go([ch] {
            for (int i = 1; i <= 100; ++i) ch.send(i);
            ch.close();
        });
        long sum = 0;
        for (int v : ch) sum += v;
        EXPECT_EQ(sum, 5050);
    });
}

#if GORO_TEST_STD_VIEWS
// A plain thread (no goroutine, no run()) ranges over a channel the same way.
TEST(ChanRange, FromAPlainThread) {
    auto ch = buffered_with(5);
    std::vector<int> got;
    for (int v : ch | std::views::take(4)) got.push_back(v);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(ch.size(), 1u);
}
#endif  // GORO_TEST_STD_VIEWS
