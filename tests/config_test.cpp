// Stack configuration is checked when the runtime starts: a bad
// GORO_STACK_SIZE, GORO_GUARDED_STACKS, GORO_GUARD_REGIONS or
// options::stack_size throws goro::misuse_error naming the variable or
// option and the value, from goro::run and from the first goro::go outside
// run, and leaves goro usable once the value is fixed. Good values, and
// GORO_GUARDED_STACKS=0 on either protection scheme, run goroutines.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "goro/goro.hpp"
#include "stacks/stack_pool.hpp"
#include "test_util.hpp"

using goro_test::procs;

namespace {

// Sets (or unsets, for nullptr) an environment variable for one scope.
class scoped_env {
  public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~scoped_env() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

// Starts a runtime with `o` and runs a goroutine on it.
void start(goro::options o = procs(1)) {
    goro::run(o, [] {
        goro::wait_group wg;
        wg.go([] {});
        wg.wait();
    });
}

// f must throw goro::misuse_error whose what() contains every one of `parts`.
template <class F>
void expect_config_error(F&& f, std::initializer_list<std::string> parts) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one naming " << *parts.begin();
    } catch (const goro::misuse_error& e) {
        const std::string what = e.what();
        for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << what;
    }
}

}  // namespace

TEST(Config, StackSizeEnvMessage) {
    scoped_env e("GORO_STACK_SIZE", "-1");
    try {
        start();
        ADD_FAILURE() << "GORO_STACK_SIZE=-1 accepted";
    } catch (const goro::misuse_error& err) {
        EXPECT_STREQ(err.what(),
                     "goro: GORO_STACK_SIZE=\"-1\": not a size in bytes (expected "
                     "65536..1073741824, optional k/m/g suffix)");
    }
}

TEST(Config, StackSizeEnvRejectsBadValues) {
    for (const char* bad : {"-1",
                            "1e15",
                            "1000000000000000",
                            "abc",
                            "0",
                            "0k",
                            "12x",
                            "64k ",
                            " 64k",
                            "+65536",
                            "0x10000",
                            "65535",
                            "63k",
                            "1073741825",
                            "1025m",
                            "2g",
                            "1.5m",
                            "k",
                            "64kb",
                            "64KiB",
                            "18446744073709551616",
                            "99999999999999999999k",
                            "1t"}) {
        SCOPED_TRACE(bad);
        scoped_env e("GORO_STACK_SIZE", bad);
        expect_config_error([] { start(); },
                            {"GORO_STACK_SIZE=\"" + std::string(bad) + "\"", "65536..1073741824"});
    }
}

TEST(Config, BadStackSizeWithoutGuardPages) {
    // Used to divide by a zero slot size (SIGFPE) instead of refusing.
    scoped_env g("GORO_GUARDED_STACKS", "0");
    scoped_env e("GORO_STACK_SIZE", "-1");
    expect_config_error([] { start(); }, {"GORO_STACK_SIZE=\"-1\""});
}

TEST(Config, StackSizeEnvRejectsNonPrintableValueQuoted) {
    scoped_env e("GORO_STACK_SIZE", "64k\n");
    expect_config_error([] { start(); }, {"GORO_STACK_SIZE=\"64k\\x0a\""});
}

TEST(Config, StackSizeEnvIsCheckedEvenWhenTheOptionIsGiven) {
    scoped_env e("GORO_STACK_SIZE", "garbage");
    goro::options o = procs(1);
    o.stack_size = 128 << 10;
    expect_config_error([&] { start(o); }, {"GORO_STACK_SIZE=\"garbage\""});
}

TEST(Config, StackSizeEnvAcceptsSuffixes) {
    auto& pool = goro::detail::stack_pool::instance();
    const struct {
        const char* text;
        std::size_t bytes;
    } good[] = {{"65536", 65536},
                {"64k", 64 << 10},
                {"64K", 64 << 10},
                {"100000", 102400},
                {"3m", 3 << 20},
                {"1M", 1 << 20},
                {"1g", std::size_t{1} << 30},
                {"1048576", 1 << 20},
                {"", 1 << 20}};
    for (const auto& g : good) {
        SCOPED_TRACE(g.text);
        scoped_env e("GORO_STACK_SIZE", g.text);  // "": as if unset
        start();
        EXPECT_EQ(pool.slot_size(), g.bytes);
    }
}

TEST(Config, StackSizeOptionRange) {
    for (std::size_t bad :
         {std::size_t{1}, std::size_t{65535}, (std::size_t{1} << 30) + 1, SIZE_MAX}) {
        SCOPED_TRACE(bad);
        goro::options o = procs(1);
        o.stack_size = bad;
        expect_config_error([&] { start(o); },
                            {"options::stack_size=" + std::to_string(bad), "65536..1073741824"});
    }
    goro::options o = procs(1);
    o.stack_size = 65536;
    start(o);
    EXPECT_EQ(goro::detail::stack_pool::instance().slot_size(), 65536u);
    o.stack_size = 200000;  // rounded up to whole pages
    start(o);
    EXPECT_EQ(goro::detail::stack_pool::instance().slot_size(), 200704u);
}

TEST(Config, GuardedStacksRejectsBadValues) {
    for (const char* bad : {"-1", "abc", "1.5", "10x", " 5", "0x10", "+3"}) {
        SCOPED_TRACE(bad);
        scoped_env e("GORO_GUARDED_STACKS", bad);
        expect_config_error([] { start(); },
                            {"GORO_GUARDED_STACKS=\"" + std::string(bad) + "\"", "non-negative"});
    }
}

TEST(Config, GuardRegionsRejectsBadValues) {
    for (const char* bad : {"2", "yes", "true", "00", "-1", "on"}) {
        SCOPED_TRACE(bad);
        scoped_env e("GORO_GUARD_REGIONS", bad);
        expect_config_error([] { start(); }, {"GORO_GUARD_REGIONS=\"" + std::string(bad) + "\""});
    }
}

TEST(Config, BadValueFromTheFirstGoOutsideRun) {
    // The lazily started runtime checks the same settings at its start...
    {
        scoped_env e("GORO_STACK_SIZE", "12 MiB");
        expect_config_error([] { goro::go([] {}); }, {"GORO_STACK_SIZE=\"12 MiB\""});
        EXPECT_EQ(goro::num_goroutines(), 0u);
    }
    // ...and starts once the value is fixed.
    std::atomic<bool> ran{false};
    goro::wait_group wg;
    wg.go([&] { ran = true; });
    wg.wait();
    EXPECT_TRUE(ran.load());
}

TEST(Config, RunWorksAgainAfterARefusedStart) {
    {
        scoped_env e("GORO_GUARDED_STACKS", "many");
        expect_config_error([] { start(); }, {"GORO_GUARDED_STACKS=\"many\""});
    }
    int r = goro::run(procs(1), [] { return 7; });  // not "another goro::run is already active"
    EXPECT_EQ(r, 7);
}

TEST(Config, GuardedStacksZeroRunsOnEitherScheme) {
    // In a fresh process each (the scheme is fixed at the first start).
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    for (const char* regions : {"1", "0"}) {
        SCOPED_TRACE(regions);
        EXPECT_EXIT(
            {
                ::setenv("GORO_GUARDED_STACKS", "0", 1);
                ::setenv("GORO_GUARD_REGIONS", regions, 1);
                std::atomic<long> sum{0};
                goro::run(procs(2), [&] {
                    goro::wait_group wg;
                    for (int i = 0; i < 200; ++i) wg.go([&, i] { sum += i; });
                    wg.wait();
                });
                auto& pool = goro::detail::stack_pool::instance();
                const bool regions_used = pool.scheme() == goro::detail::guard_scheme::regions;
                std::fprintf(stderr, "sum=%ld guarded=%zu total=%zu regions=%d\n", sum.load(),
                             pool.guarded_slots(), pool.total_slots(), regions_used ? 1 : 0);
                // Guard regions guard every slot; the mprotect scheme none.
                const bool ok = sum == 199 * 200 / 2 && pool.total_slots() > 0 &&
                                pool.guarded_slots() == (regions_used ? pool.total_slots() : 0) &&
                                (regions_used ==
                                 (regions[0] == '1' && goro::detail::guard_regions_supported()));
                std::_Exit(ok ? 0 : 1);
            },
            testing::ExitedWithCode(0), "sum=19900 ");
    }
}

TEST(Config, GuardedStacksLargeValueIsCapped) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            ::setenv("GORO_GUARDED_STACKS", "99999999999999999999999", 1);
            ::setenv("GORO_GUARD_REGIONS", "0", 1);
            goro::run(procs(1), [] {
                goro::wait_group wg;
                for (int i = 0; i < 100; ++i) wg.go([] {});
                wg.wait();
            });
            auto& pool = goro::detail::stack_pool::instance();
            std::fprintf(stderr, "guarded=%zu total=%zu\n", pool.guarded_slots(),
                         pool.total_slots());
            std::_Exit(pool.guarded_slots() == pool.total_slots() ? 0 : 1);
        },
        testing::ExitedWithCode(0), "guarded=[0-9]+ ");
}
