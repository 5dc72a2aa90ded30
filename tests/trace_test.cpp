// Tests of the execution tracer (goro::trace): the file parses as trace-event
// JSON and holds the expected slices, flows and instants; misuse throws; a
// trace spans runtimes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <vector>

#include "goro/goro.hpp"
#include "mini_json.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;

namespace {

std::string temp_path(const char* name) {
    return ::testing::TempDir() + "goro_trace_" + name + "_" + std::to_string(::getpid()) + ".json";
}

// The trace's events, parsed (throws if the file is not valid JSON).
std::vector<mini_json::value> read_events(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    mini_json::value doc = mini_json::parse(ss.str());
    const mini_json::value* ev = doc.get("traceEvents");
    if (!ev || ev->kind != mini_json::value::array)
        throw std::runtime_error("no traceEvents array");
    std::remove(path.c_str());
    return ev->items;
}

std::vector<const mini_json::value*> of_phase(const std::vector<mini_json::value>& ev,
                                              const std::string& ph) {
    std::vector<const mini_json::value*> out;
    for (const auto& e : ev)
        if (e.str("ph") == ph) out.push_back(&e);
    return out;
}

double arg_num(const mini_json::value& e, const char* k) {
    const mini_json::value* a = e.get("args");
    return a ? a->num(k) : -1;
}
std::string arg_str(const mini_json::value& e, const char* k) {
    const mini_json::value* a = e.get("args");
    return a ? a->str(k) : std::string();
}

}  // namespace

TEST(Trace, SpawnedGoroutinesEachHaveASlice) {
    const std::string path = temp_path("spawn");
    constexpr int n = 40;
    std::vector<std::uint64_t> ids;
    goro::trace::start(path);
    goro::run(procs(2), [&] {
        std::mutex mu;
        goro::wait_group wg;
        for (int i = 0; i < n; ++i)
            wg.go([&] {
                std::lock_guard<std::mutex> lk(mu);
                ids.push_back(goro::this_goroutine::id());
            });
        wg.wait();
    });
    goro::trace::stop();
    const auto ev = read_events(path);
    std::set<double> sliced;
    for (const auto* e : of_phase(ev, "X")) {
        EXPECT_EQ(e->str("name"), "goroutine " + std::to_string(std::uint64_t(arg_num(*e, "id"))));
        EXPECT_GE(e->num("dur"), 0);
        EXPECT_NE(arg_str(*e, "site").find(":"), std::string::npos);
        sliced.insert(arg_num(*e, "id"));
    }
    ASSERT_EQ(ids.size(), std::size_t(n));
    for (std::uint64_t id : ids) EXPECT_EQ(sliced.count(double(id)), 1u) << "goroutine " << id;
    EXPECT_GE(sliced.size(), std::size_t(n) + 1);  // and main
    // Every track is named.
    std::set<double> tids, named;
    for (const auto* e : of_phase(ev, "X")) tids.insert(e->num("tid"));
    for (const auto* e : of_phase(ev, "M"))
        if (e->str("name") == "thread_name") named.insert(e->num("tid"));
    for (double t : tids) EXPECT_EQ(named.count(t), 1u);
}

TEST(Trace, SlicesSayWhyARunEnded) {
    const std::string path = temp_path("stop");
    goro::trace::start(path);
    goro::run(procs(1), [] {
        auto ch = goro::make_chan<int>();
        goro::go([ch] {
            goro::yield();
            ch.send(1);
        });
        (void)ch.recv();
    });
    goro::trace::stop();
    std::set<std::string> stops;
    const auto ev = read_events(path);
    for (const auto* e : of_phase(ev, "X")) stops.insert(arg_str(*e, "stop"));
    EXPECT_EQ(stops.count("park: chan receive"), 1u);
    EXPECT_EQ(stops.count("yield"), 1u);
    EXPECT_EQ(stops.count("exit"), 1u);
    bool park_instant = false;
    for (const auto* e : of_phase(ev, "i"))
        if (e->str("name") == "park" && arg_str(*e, "reason") == "chan receive")
            park_instant = true;
    EXPECT_TRUE(park_instant);
}

TEST(Trace, PingPongRoundTripsAreFlows) {
    const std::string path = temp_path("pingpong");
    constexpr int k = 300;
    goro::trace::start(path);
    goro::run(procs(2), [] {
        auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
        goro::wait_group wg;
        wg.go([&] {
            for (int v : ping) pong.send(v);
        });
        for (int i = 0; i < k; ++i) {
            ping.send(i);
            (void)pong.recv();
        }
        ping.close();
        wg.wait();
    });
    goro::trace::stop();
    const auto ev = read_events(path);
    std::map<double, int> starts;
    for (const auto* e : of_phase(ev, "s")) {
        EXPECT_EQ(e->str("name"), "ready");
        ++starts[e->num("id")];
    }
    int matched = 0;
    for (const auto* e : of_phase(ev, "f")) {
        EXPECT_EQ(e->str("bp"), "e");
        if (starts.count(e->num("id"))) ++matched;
    }
    for (const auto& [id, count] : starts) EXPECT_EQ(count, 1) << "flow id reused: " << id;
    // Each round trip readies both sides.
    EXPECT_GE(matched, k);
}

TEST(Trace, StealsAppearWithTwoWorkersUnderLoad) {
    const std::string path = temp_path("steal");
    goro::trace::start(path);
    goro::run(procs(2), [] {
        goro::wait_group wg;
        for (int i = 0; i < 64; ++i)
            wg.go([] {
                const auto until = std::chrono::steady_clock::now() + 200us;
                while (std::chrono::steady_clock::now() < until) {
                }
            });
        wg.wait();
    });
    goro::trace::stop();
    const auto ev = read_events(path);
    int steals = 0;
    for (const auto* e : of_phase(ev, "i"))
        if (e->str("name") == "steal") {
            ++steals;
            EXPECT_NE(arg_num(*e, "from_worker"), e->num("tid"));
        }
    EXPECT_GE(steals, 1);
    std::set<double> tids;
    for (const auto* e : of_phase(ev, "X")) tids.insert(e->num("tid"));
    EXPECT_EQ(tids.size(), 2u);
}

TEST(Trace, WorkerSleepsAndWakesAreInstants) {
    const std::string path = temp_path("sleep");
    goro::trace::start(path);
    goro::run(procs(2), [] { goro::sleep_for(20ms); });
    goro::trace::stop();
    std::set<std::string> names;
    const auto ev = read_events(path);
    for (const auto* e : of_phase(ev, "i")) names.insert(e->str("name"));
    EXPECT_EQ(names.count("worker sleep"), 1u);
    EXPECT_EQ(names.count("worker wake"), 1u);
}

TEST(Trace, Misuse) {
    EXPECT_FALSE(goro::trace::running());
    try {
        goro::trace::stop();
        FAIL() << "stop() without start()";
    } catch (const goro::misuse_error& e) {
        EXPECT_NE(std::string(e.what()).find("goro::trace::stop"), std::string::npos);
    }
    EXPECT_THROW(goro::trace::start("/nonexistent-goro-dir/trace.json"), std::system_error);
    EXPECT_FALSE(goro::trace::running());
    const std::string path = temp_path("misuse");
    goro::trace::start(path);
    EXPECT_TRUE(goro::trace::running());
    try {
        goro::trace::start(path);
        FAIL() << "start() while tracing";
    } catch (const goro::misuse_error& e) {
        EXPECT_NE(std::string(e.what()).find("goro::trace::start"), std::string::npos);
    }
    goro::trace::stop();
    EXPECT_FALSE(goro::trace::running());
    EXPECT_NO_THROW(read_events(path));
}

// A trace goes on when a runtime ends: the next runtime's runs are in the
// same file, on the same worker tracks. Started and stopped inside a
// goroutine too.
TEST(Trace, SpansRuntimes) {
    const std::string path = temp_path("spans");
    int lines[2] = {0, 0};
    goro::trace::start(path);
    for (int r = 0; r < 2; ++r)
        goro::run(procs(1), [&lines, r] {
            goro::wait_group wg;
            lines[r] = __LINE__ + 1;
            wg.go([] {});
            wg.wait();
        });
    goro::trace::stop();
    const int second_line = lines[1];
    ASSERT_EQ(lines[0], lines[1]);
    // Both runtimes' goroutines (ids restart at each run) are in the file.
    int slices = 0, mains = 0;
    const auto ev = read_events(path);
    for (const auto* e : of_phase(ev, "X")) {
        if (arg_str(*e, "site").find("trace_test.cpp:" + std::to_string(second_line)) !=
            std::string::npos)
            ++slices;
        if (arg_num(*e, "id") == 1) ++mains;
    }
    EXPECT_EQ(slices, 2);
    EXPECT_GE(mains, 2);  // goroutine 1 of each runtime

    goro::run([] {
        const std::string p = temp_path("inside");
        goro::trace::start(p);
        goro::wait_group wg;
        wg.go([] {});
        wg.wait();
        goro::trace::stop();
        EXPECT_GE(of_phase(read_events(p), "X").size(), 1u);
    });
}
