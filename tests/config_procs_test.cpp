// Configuration of the worker count is validated when a runtime starts, with
// an error naming the variable or option. Before, a malformed GORO_MAXPROCS
// was silently replaced by the hardware's count.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "goro/goro.hpp"

namespace {

struct env_var {
    std::string name;
    env_var(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
    ~env_var() { ::unsetenv(name.c_str()); }
};

std::string run_error(const goro::options& o) {
    try {
        goro::run(o, [] {});
    } catch (const std::logic_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(ConfigProcs, MalformedMaxprocsIsRejectedByName) {
    for (const char* bad : {"abc", "-1", "0", "4x", "99999999999999999999", "5000", ""}) {
        env_var e("GORO_MAXPROCS", bad);
        std::string err = run_error(goro::options{});
        EXPECT_NE(err.find("GORO_MAXPROCS"), std::string::npos) << "value '" << bad << "': " << err;
        // Also a lazily started runtime.
        bool threw = false;
        try {
            goro::go([] {});
        } catch (const goro::misuse_error& x) {
            threw = std::string(x.what()).find("GORO_MAXPROCS") != std::string::npos;
        }
        EXPECT_TRUE(threw) << bad;
    }
    env_var ok("GORO_MAXPROCS", "3");
    unsigned seen = 0;
    goro::run([&] { seen = goro::maxprocs(); });
    EXPECT_EQ(seen, 3u);
}

TEST(ConfigProcs, TooManyProcsIsRejectedByName) {
    goro::options o;
    o.procs = 100000;
    std::string err = run_error(o);
    EXPECT_NE(err.find("procs"), std::string::npos) << err;
    // The runtime still works afterwards.
    o.procs = 2;
    int v = goro::run(o, [] { return 7; });
    EXPECT_EQ(v, 7);
}
