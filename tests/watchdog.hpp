// tests/watchdog.hpp — turns a hang into a test failure.
//
// A test that must never block (Go's timer drain idiom, a reset loop) cannot
// assert "this call returns". A watchdog thread does it instead: the test
// calls pet() after each round; if no round finishes within `limit` (10 s by
// default: far beyond any round's normal time, even under TSan), the watchdog
// prints what hung and ends the process with status 1, which fails the test
// (ctest runs each test in its own process).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace goro_test {

class watchdog {
  public:
    explicit watchdog(std::string what, std::chrono::seconds limit = std::chrono::seconds(10))
        : what_(std::move(what)), limit_(limit), thread_([this] { watch(); }) {}
    ~watchdog() {
        {
            std::lock_guard lk(mu_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    // One round finished (callable from any thread or goroutine).
    void pet() noexcept { rounds_.fetch_add(1, std::memory_order_relaxed); }
    long rounds() const noexcept { return rounds_.load(std::memory_order_relaxed); }

  private:
    void watch() {
        std::unique_lock lk(mu_);
        long seen = rounds();
        auto last = std::chrono::steady_clock::now();
        while (!done_) {
            cv_.wait_for(lk, std::chrono::milliseconds(100));
            long now_rounds = rounds();
            auto now = std::chrono::steady_clock::now();
            if (now_rounds != seen) {
                seen = now_rounds;
                last = now;
            } else if (!done_ && now - last > limit_) {
                std::fprintf(stderr,
                             "watchdog: %s: no round finished for %lld s after %ld rounds: "
                             "blocked\n",
                             what_.c_str(), static_cast<long long>(limit_.count()), seen);
                std::fflush(stderr);
                std::_Exit(1);
            }
        }
    }

    std::string what_;
    std::chrono::seconds limit_;
    std::atomic<long> rounds_{0};
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

// The round count for a must-never-block loop: `n` (scaled down under
// sanitizers), unless GORO_TIMER_ROUNDS is set (e.g. 1000000 for the
// million-round run by hand).
inline long rounds_from_env(long n, long sanitized_div = 10) {
    if (const char* e = std::getenv("GORO_TIMER_ROUNDS")) {
        long v = std::atol(e);
        if (v > 0) return v;
    }
    return scaled(n, sanitized_div);
}

}  // namespace goro_test
