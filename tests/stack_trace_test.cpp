// Tests of goro::stack (runtime.Stack of the calling goroutine): the Go-like
// header with the goroutine's id, the caller's own frames (goro_tests is
// linked with ENABLE_EXPORTS so that dladdr sees them), the creation site,
// a plain thread's header, truncation of deep stacks, and many goroutines
// taking traces at once.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

using goro_test::procs;

// External linkage, so that the executable's dynamic symbol table has them.
[[gnu::noinline]] std::string goro_stack_test_inner() {
    std::string s = goro::stack();
    asm volatile("" ::: "memory");  // keep the call a call, not a tail jump
    return s;
}
[[gnu::noinline]] std::string goro_stack_test_outer() {
    std::string s = goro_stack_test_inner();
    asm volatile("" ::: "memory");
    return s;
}
[[gnu::noinline]] std::string goro_stack_test_deep(int n) {
    std::string s = n == 0 ? goro::stack() : goro_stack_test_deep(n - 1);
    asm volatile("" ::: "memory");
    return s;
}

TEST(StackTrace, HeaderFramesAndCreationSite) {
    goro::run(procs(2), [] {
        goro::chan<std::string> out = goro::make_chan<std::string>(1);
        std::uint64_t id = 0;
        goro::wait_group wg;
        wg.go([&] {
            id = goro::this_goroutine::id();
            out.send(goro_stack_test_outer());
        });
        wg.wait();
        const std::string s = *out.recv();
        EXPECT_EQ(s.rfind("goroutine " + std::to_string(id) + " [running]:\n", 0), 0u) << s;
        const auto inner = s.find("goro_stack_test_inner");
        const auto outer = s.find("goro_stack_test_outer");
        ASSERT_NE(inner, std::string::npos) << s;
        ASSERT_NE(outer, std::string::npos) << s;
        EXPECT_LT(inner, outer) << "innermost first\n" << s;
        EXPECT_NE(s.find("goro_tests +0x"), std::string::npos) << "module and offset\n" << s;
        EXPECT_NE(s.find("created at "), std::string::npos) << s;
        EXPECT_NE(s.find("stack_trace_test.cpp:"), std::string::npos) << s;
        EXPECT_EQ(s.find("goro::stack"), std::string::npos) << "its own frame is left out\n" << s;
    });
}

TEST(StackTrace, PlainThread) {
    std::string s;
    std::thread t([&] { s = goro_stack_test_outer(); });
    t.join();
    EXPECT_EQ(s.rfind("plain thread [running] (not a goroutine):\n", 0), 0u) << s;
    EXPECT_NE(s.find("goro_stack_test_outer"), std::string::npos) << s;
    EXPECT_EQ(s.find("created at"), std::string::npos) << s;
}

TEST(StackTrace, DeepStackIsCutAt128Frames) {
    goro::run(procs(1), [] {
        const std::string s = goro_stack_test_deep(300);
        EXPECT_NE(s.find("...additional frames elided...\n"), std::string::npos);
        std::size_t frames = 0;
        for (std::size_t at = 0; (at = s.find("\n\t", at)) != std::string::npos; ++at) ++frames;
        EXPECT_EQ(frames, 127u);
    });
}

TEST(StackTrace, ManyGoroutinesAtOnce) {
    goro::run(procs(4), [] {
        std::atomic<int> good{0};
        goro::wait_group wg;
        for (int i = 0; i < 200; ++i)
            wg.go([&] {
                const std::string s = goro_stack_test_outer();
                const std::string head =
                    "goroutine " + std::to_string(goro::this_goroutine::id()) + " [running]:\n";
                if (s.rfind(head, 0) == 0 && s.find("goro_stack_test_inner") != std::string::npos)
                    good.fetch_add(1);
                goro::yield();
            });
        wg.wait();
        EXPECT_EQ(good.load(), 200);
    });
}
