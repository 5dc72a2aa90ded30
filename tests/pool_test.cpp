// Tests of goro::pool (Go's sync.Pool): get/put round trips on a worker and
// on plain threads, New, dropping when full (nothing leaks), and a stress
// that would catch one object handed to two users at once.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "goro/pool.hpp"
#include "misuse_util.hpp"
#include "test_util.hpp"

using goro_test::procs;
using goro_test::scaled;

namespace {

// Counts live objects; `busy` catches an object handed out twice at once.
struct counted {
    static inline std::atomic<long> live{0};
    std::atomic<bool> busy{false};
    long uses = 0;
    counted() { live.fetch_add(1); }
    ~counted() { live.fetch_sub(1); }
};

}  // namespace

TEST(Pool, EmptyWithoutNewGivesNull) {
    goro::pool<int> p;
    EXPECT_EQ(p.get(), nullptr);
    p.put(nullptr);  // ignored
    EXPECT_EQ(p.get(), nullptr);
}

TEST(Pool, NewMakesObjectsWhenEmpty) {
    int made = 0;
    goro::pool<std::string> p([&] {
        ++made;
        return std::string("fresh");  // a T: moved into a new object
    });
    auto a = p.get();
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(*a, "fresh");
    EXPECT_EQ(made, 1);
    goro::pool<std::string> q([] { return std::make_unique<std::string>("ptr"); });
    EXPECT_EQ(*q.get(), "ptr");
}

// On a plain thread (the overflow) and in a goroutine (its worker's slots),
// a put object comes back from the next get.
TEST(Pool, PutThenGetReturnsTheSameObject) {
    goro::pool<int> p;
    auto x = std::make_unique<int>(5);
    int* raw = x.get();
    p.put(std::move(x));
    auto y = p.get();
    EXPECT_EQ(y.get(), raw);
    goro::run(procs(2), [&] {
        goro::wait_group wg;
        std::atomic<int> same{0};
        for (int i = 0; i < 100; ++i)
            wg.go([&] {
                auto o = std::make_unique<int>(1);
                int* r = o.get();
                p.put(std::move(o));
                auto back = p.get();  // no switch in between: same worker
                if (back.get() == r) same.fetch_add(1);
            });
        wg.wait();
        EXPECT_EQ(same.load(), 100);
    });
}

// What does not fit is destroyed at once; the rest when the pool goes.
TEST(Pool, DropsWhenFullAndLeaksNothing) {
    counted::live = 0;
    {
        goro::pool<counted> p;
        for (int i = 0; i < 1000; ++i) p.put(std::make_unique<counted>());
        EXPECT_LE(counted::live.load(), 128 + 7 * 64);
        EXPECT_GT(counted::live.load(), 0);
        goro::run(procs(4), [&] {
            goro::wait_group wg;
            for (int i = 0; i < 1000; ++i) wg.go([&] { p.put(std::make_unique<counted>()); });
            wg.wait();
        });
        EXPECT_LE(counted::live.load(), 128 + 7 * 64);
    }
    EXPECT_EQ(counted::live.load(), 0);
}

TEST(Pool, MisuseEmptyNew) {
    std::function<std::unique_ptr<int>()> empty;
    goro_test::expect_misuse([&] { goro::pool<int> p(empty); }, "goro::pool");
    std::unique_ptr<int> (*null_fn)() = nullptr;
    goro_test::expect_misuse([&] { goro::pool<int> p(null_fn); }, "goro::pool");
}

// Goroutines on 8 workers and plain threads take, use (across parks) and
// return objects: an object is never held by two users at once, and every
// object made is destroyed in the end.
TEST(Pool, StressNoObjectHandedOutTwice) {
    counted::live = 0;
    std::atomic<long> made{0}, doubled{0};
    {
        goro::pool<counted> p([&] {
            made.fetch_add(1);
            return std::make_unique<counted>();
        });
        auto use = [&](int i) {
            auto o = p.get();
            if (o->busy.exchange(true)) doubled.fetch_add(1);
            ++o->uses;
            if (i % 4 == 0) goro::yield();  // held across a switch
            o->busy.store(false);
            if (i % 9 != 0) p.put(std::move(o));  // and some are not given back
        };
        const int per = static_cast<int>(scaled(20000, 10));
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < 2; ++t)
            threads.emplace_back([&] {
                for (int i = 0; !stop.load(); ++i) use(i);
            });
        goro::run(procs(8), [&] {
            goro::wait_group wg;
            for (int g = 0; g < 32; ++g)
                wg.go([&] {
                    for (int i = 0; i < per / 32 * 20; ++i) use(i);
                });
            wg.wait();
        });
        stop = true;
        for (auto& t : threads) t.join();
        EXPECT_EQ(doubled.load(), 0);
        // Reuse happened: far fewer objects made than uses.
        EXPECT_LT(made.load(), per * 20 / 2);
    }
    EXPECT_EQ(counted::live.load(), 0);
}
