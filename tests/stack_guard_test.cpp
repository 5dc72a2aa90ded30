// Stack overflow is always reported: death tests with few and with many
// goroutines alive (more than the old mprotect budget of max_map_count / 8),
// on the guard-region path and on the forced fallbacks (mprotect guard
// pages, canary), plus a guard that must survive trimming and reuse.
//
// Each test overflows one goroutine that first prints its id, and expects
// the report to name that id, say "stack overflow" and how it was caught,
// and give the creation site in this file. Goroutines that survive where
// the report was due end the child with exit code 0, which fails the death
// test. The runtime runs on one worker, so nothing else
// runs between the overflow and the check that must catch it.
//
// Sanitizers: goro installs its SIGSEGV handler when the runtime starts,
// after the sanitizer runtime has set up (ASan lets a program install its
// own, allow_user_segv_handler), so the reports are goro's in every preset;
// none of these tests is skipped under a sanitizer.
// The canary tests overflow into the neighbouring slot on purpose; their
// recursion is left uninstrumented by ASan, which would otherwise report the
// write into the neighbour's redzones first.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "stack_util.hpp"
#include "stacks/stack_pool.hpp"
#include "test_util.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define GORO_TEST_NO_ASAN __attribute__((no_sanitize("address")))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_TEST_NO_ASAN __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef GORO_TEST_NO_ASAN
#define GORO_TEST_NO_ASAN
#endif

using namespace std::chrono_literals;
using goro_test::current_slot_lo;
using goro_test::recurse_forever;

namespace {

constexpr std::size_t test_stack = 256 << 10;

// Whether this kernel has MADV_GUARD_INSTALL (Linux 6.13+), found out here
// independently of goro.
bool kernel_has_guard_regions() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    const bool ok = ::madvise(p, 4096, 102 /* MADV_GUARD_INSTALL */) == 0;
    ::munmap(p, 4096);
    return ok;
}

// Recurses until a frame lies below `target`, then returns: an overflow that
// ends before anything faults (below the stack are the slot's canary page
// and the neighbouring slot's top, both mapped).
[[gnu::noinline]] GORO_TEST_NO_ASAN long recurse_below(std::uintptr_t target, volatile char* prev) {
    volatile char frame[200];
    for (auto& c : frame) c = 0x5a;
    if (prev) frame[0] = prev[1];
    if (reinterpret_cast<std::uintptr_t>(&frame[0]) < target) return frame[0];
    return recurse_below(target, frame) + frame[1];
}

// Runs overflow() in a goroutine created at `where` while `alive` other
// goroutines are parked; the goroutine prints "id=N;" first. If the process
// is still alive afterwards, exits with 0 (a failed death test).
template <class F>
void overflow_with_alive(int alive, goro::source_location where, F overflow) {
    goro::options o;
    o.procs = 1;
    o.stack_size = test_stack;
    goro::run(o, [&] {
        goro::wait_group gate, started, done;
        gate.add(1);
        started.add(alive);
        for (int i = 0; i < alive; ++i)
            goro::go([&] {
                started.done();
                gate.wait();
            });
        started.wait();
        done.add(1);
        goro::go(
            [&] {
                std::fprintf(stderr, "id=%llu;\n",
                             static_cast<unsigned long long>(goro::this_goroutine::id()));
                overflow();
                done.done();
            },
            where);
        done.wait();
        std::fprintf(stderr, "the overflow was not reported\n");
        std::_Exit(0);
    });
    std::_Exit(0);
}

// Matches the child's stderr: "id=N;", then a report line "... stack
// overflow: goroutine N ..." naming the same N, containing `how`, and ending
// with the creation site in this file. (Plain string search: a gtest regex
// cannot refer back to the id, as gtest wraps it in a group of its own.)
class report_matcher : public testing::MatcherInterface<const std::string&> {
  public:
    report_matcher(const goro::source_location& where, std::string how)
        : how_(std::move(how)), site_("stack_guard_test.cpp:" + std::to_string(where.line())) {}
    bool MatchAndExplain(const std::string& out, testing::MatchResultListener*) const override {
        const std::string line = goro_test::overflow_report_for_printed_id(out);
        return line.find(how_) != std::string::npos &&
               line.find(" created at ") != std::string::npos && line.size() > site_.size() &&
               line.compare(line.size() - site_.size(), site_.size(), site_) == 0 &&
               (line[line.size() - site_.size() - 1] == '/' ||
                line[line.size() - site_.size() - 1] == ' ');
    }
    void DescribeTo(std::ostream* os) const override {
        *os << "has \"id=N;\" then \"stack overflow: goroutine N ...\" with \"" << how_
            << "\", ending in \"/" << site_ << "\"";
    }

  private:
    std::string how_;
    std::string site_;
};

testing::Matcher<const std::string&> report(const goro::source_location& where,
                                            const std::string& how) {
    return testing::MakeMatcher(new report_matcher(where, how));
}

// The fallback scheme: no guard regions and, with guarded = "0", no
// mprotect guard pages either.
void force_fallback(const char* guarded) {
    ::setenv("GORO_GUARD_REGIONS", "0", 1);
    if (guarded) ::setenv("GORO_GUARDED_STACKS", guarded, 1);
}

// An overflow only the canary can catch: 8 KiB past the slot, then back.
void overflow_a_little() {
    const std::uintptr_t lo = current_slot_lo();
    if (lo == 0) {
        std::fprintf(stderr, "slot not found\n");
        std::_Exit(0);
    }
    recurse_below(lo - (8 << 10), nullptr);
}

void overflow_to_guard() {
    recurse_forever(0, nullptr);
}

// The guard every slot gets by default: a guard region where the kernel has
// them (the mprotect page only for the first slots otherwise).
std::string guard_hit() {
    return kernel_has_guard_regions() ? "(guard region hit)" : "(guard page hit)";
}
const char* const canary = "canary overwritten";

}  // namespace

using StackGuardDeathTest = ::testing::Test;

TEST(StackGuardDeathTest, OverflowWithTenAliveIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(overflow_with_alive(10, where, overflow_to_guard), report(where, guard_hit()));
}

// A goroutine with a stack size of its own (goro::spawn_options) is guarded
// like the others, and the report gives its size.
namespace {

// Overflows a goroutine spawned with a stack size of its own (in a child:
// use inside EXPECT_DEATH); the report names the creation site `where`.
void overflow_custom_size_stack(std::size_t stack_size, const goro::source_location& where) {
    goro::options o;
    o.procs = 1;
    o.stack_size = test_stack;
    goro::run(o, [&] {
        goro::wait_group wg;
        wg.go(
            goro::spawn_options{.stack_size = stack_size},
            [] {
                std::fprintf(stderr, "id=%llu;\n",
                             static_cast<unsigned long long>(goro::this_goroutine::id()));
                overflow_to_guard();
            },
            where);
        wg.wait();
    });
    std::_Exit(0);
}

}  // namespace

// A goroutine with a stack size of its own (goro::spawn_options) is guarded
// like the others, and the report gives its size.
TEST(StackGuardDeathTest, OverflowOfACustomSizeStackIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(overflow_custom_size_stack(512 << 10, where),
                 report(where, "508 KiB stack " + guard_hit()));
}

TEST(StackGuardDeathTest, ForcedFallbackGuardPageOnACustomSizeStack) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            force_fallback(nullptr);
            overflow_custom_size_stack(2 << 20, where);
        },
        report(where, "2044 KiB stack (guard page hit)"));
}

TEST(StackGuardDeathTest, OverflowWithTwentyThousandAliveIsReported) {
    // More stacks alive than the mprotect budget (max_map_count / 8 = 8191):
    // with guard regions the last one is guarded all the same. Without them
    // it is a canary slot, and only a short overflow can be tested safely.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    if (kernel_has_guard_regions())
        EXPECT_DEATH(overflow_with_alive(20000, where, overflow_to_guard),
                     report(where, "(guard region hit)"));
    else
        EXPECT_DEATH(overflow_with_alive(20000, where, overflow_a_little), report(where, canary));
}

TEST(StackGuardDeathTest, ForcedFallbackGuardPageWithTenAlive) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            force_fallback(nullptr);
            overflow_with_alive(10, where, overflow_to_guard);
        },
        report(where, "(guard page hit)"));
}

TEST(StackGuardDeathTest, ForcedFallbackCanaryAtExitWithTwentyThousandAlive) {
    // Beyond the mprotect budget: a canary slot. The overflow returns, the
    // goroutine exits, and the exit check must report it.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            force_fallback(nullptr);
            overflow_with_alive(20000, where, overflow_a_little);
        },
        report(where, canary));
}

TEST(StackGuardDeathTest, ForcedFallbackCanaryAtYield) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            force_fallback("0");
            overflow_with_alive(10, where, [] {
                overflow_a_little();
                goro::yield();  // the switch must report it
                std::fprintf(stderr, "not reported at the switch\n");
                std::_Exit(0);
            });
        },
        report(where, canary));
}

TEST(StackGuardDeathTest, ForcedFallbackCanaryAtPark) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            force_fallback("0");
            overflow_with_alive(10, where, [] {
                overflow_a_little();
                goro::sleep_for(1ms);  // parks: the switch must report it
                std::fprintf(stderr, "not reported at the switch\n");
                std::_Exit(0);
            });
        },
        report(where, canary));
}

TEST(StackGuardDeathTest, GuardSurvivesTrimAndReuse) {
    // A goroutine goes ~200 KiB deep and parks there, so its slot is trimmed
    // (MADV_DONTNEED) when it exits; the next goroutine gets the same slot
    // from the worker's LIFO cache and overflows it: the guard must still
    // be there.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const auto where = goro::source_location::current();
    EXPECT_DEATH(
        {
            goro::options o;
            o.procs = 1;
            o.stack_size = test_stack;
            goro::run(o, [&] {
                static std::uintptr_t first = 0, deepest = 0;
                goro::wait_group wg;
                wg.add(1);
                goro::go([&] {
                    first = current_slot_lo();
                    struct deep {
                        [[gnu::noinline]] static long go(int n, volatile char* prev) {
                            volatile char frame[1024];
                            frame[0] = prev ? prev[0] : 1;
                            if (n == 0) {
                                deepest = reinterpret_cast<std::uintptr_t>(&frame[0]);
                                goro::sleep_for(1ms);  // parked deep: the low water mark
                                return frame[0];
                            }
                            return go(n - 1, frame) + frame[0];
                        }
                    };
                    deep::go(180, nullptr);
                    wg.done();
                });
                wg.wait();
                // The deepest page was returned to the kernel (trimmed).
                unsigned char resident = 1;
                const std::uintptr_t page = deepest & ~std::uintptr_t{4095};
                if (page < first ||
                    ::mincore(reinterpret_cast<void*>(page), 4096, &resident) != 0 ||
                    (resident & 1)) {
                    std::fprintf(stderr, "slot was not trimmed\n");
                    std::_Exit(0);
                }
                wg.add(1);
                goro::go(
                    [&] {
                        if (current_slot_lo() != first) {
                            std::fprintf(stderr, "slot was not reused\n");
                            std::_Exit(0);
                        }
                        std::fprintf(stderr, "id=%llu;\n",
                                     static_cast<unsigned long long>(goro::this_goroutine::id()));
                        overflow_to_guard();
                        wg.done();
                    },
                    where);
                wg.wait();
            });
            std::_Exit(0);
        },
        report(where, guard_hit()));
}

namespace {

// How many mappings (lines of /proc/self/maps) cover goroutine stacks, and
// over how many separate address ranges the stacks lie.
std::pair<long, long> stack_mappings() {
    auto& pool = goro::detail::stack_pool::instance();
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    pool.for_each_slot([&](goro::detail::stack_slot& s) {
        if (!s.sized) ranges.emplace_back(s.hi - s.bytes(), s.hi);  // slab slots only
    });
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> merged;
    for (const auto& r : ranges) {
        if (!merged.empty() && r.first <= merged.back().second)
            merged.back().second = std::max(merged.back().second, r.second);
        else
            merged.push_back(r);
    }
    long maps = 0;
    std::ifstream f("/proc/self/maps");
    std::string line;
    while (std::getline(f, line)) {
        const std::uintptr_t start = std::stoull(line, nullptr, 16);
        const std::uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
        for (const auto& m : merged)
            if (start < m.second && end > m.first) {
                ++maps;
                break;
            }
    }
    return {maps, static_cast<long>(merged.size())};
}

}  // namespace

TEST(StackGuard, EveryStackGuardedWithoutSplittingMappings) {
    if (!goro::detail::guard_regions_supported())
        GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL (Linux < 6.13)";
    if (std::getenv("GORO_GUARD_REGIONS")) GTEST_SKIP() << "GORO_GUARD_REGIONS is set";
    auto& pool = goro::detail::stack_pool::instance();
    goro::options o = goro_test::procs(2);
    o.stack_size = test_stack;
    // Outside run(): a goroutine may still be on its way into gate.wait()
    // (after its started.done()) when the main goroutine has returned; run()
    // returns only once every goroutine has ended.
    goro::wait_group gate, started;
    goro::run(o, [&] {
        EXPECT_EQ(pool.scheme(), goro::detail::guard_scheme::regions);
        const int n = 20000;  // more than max_map_count / 8 stacks at once
        gate.add(1);
        started.add(n);
        for (int i = 0; i < n; ++i)
            goro::go([&] {
                started.done();
                gate.wait();
            });
        started.wait();
        const auto [maps, ranges] = stack_mappings();
        gate.done();
        EXPECT_GE(pool.total_slots(), std::size_t{n});
        EXPECT_EQ(pool.guarded_slots(), pool.total_slots());
        // 20,000 slots of 256 KiB fill five 1 GiB slabs of 4096 slots: one
        // mapping each (or fewer, where the kernel merged neighbours), where
        // mprotect guard pages would make two per slot.
        const long slabs = static_cast<long>((pool.total_slots() + 4095) / 4096);
        EXPECT_GE(ranges, 1);
        EXPECT_LE(maps, slabs) << "mappings over " << ranges << " stack ranges";
    });
}

TEST(StackGuard, FallbackBudgetThenCanary) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            force_fallback("100");
            auto& pool = goro::detail::stack_pool::instance();
            goro::options o = goro_test::procs(1);
            o.stack_size = test_stack;
            goro::run(o, [] {
                goro::wait_group wg;
                for (int i = 0; i < 300; ++i) wg.go([] {});
                wg.wait();
            });
            std::fprintf(stderr, "scheme=%d guarded=%zu total=%zu\n",
                         static_cast<int>(pool.scheme()), pool.guarded_slots(), pool.total_slots());
            std::_Exit(0);
        },
        testing::ExitedWithCode(0), "scheme=2 guarded=100 total=[0-9]+");
}
