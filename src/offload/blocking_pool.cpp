// offload/blocking_pool.cpp — the blocking pool's threads, reservations and
// queue, and its setting. Design, accounting and lock order:
// blocking_pool.hpp.
#include "offload/blocking_pool.hpp"

#include <pthread.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include "goro/errors.hpp"
#include "runtime/parse_count.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;

namespace {

std::string range_text() {
    return "1.." + std::to_string(max_blocking_threads);
}

}  // namespace

unsigned read_blocking_threads(unsigned option) {
    unsigned from_env = 0;
    if (const char* v = std::getenv("GORO_BLOCKING_THREADS"); v && *v) {
        std::uint64_t n = 0;
        if (!parse_count(v, n) || n < 1 || n > max_blocking_threads)
            throw misuse_error(std::string("goro: GORO_BLOCKING_THREADS=\"") + v +
                               "\": not a thread count (expected " + range_text() + ")");
        from_env = static_cast<unsigned>(n);
    }
    if (option > max_blocking_threads)
        throw misuse_error("goro: options::blocking_threads=" + std::to_string(option) +
                           ": out of range (expected 0 for GORO_BLOCKING_THREADS or the default " +
                           std::to_string(default_blocking_threads) + ", or " + range_text() + ")");
    return option ? option : from_env ? from_env : default_blocking_threads;
}

blocking_pool& blocking_pool::instance() {
    // Never destroyed: detached pool threads may still use it at exit.
    static blocking_pool& p = *new blocking_pool;
    return p;
}

void blocking_pool::set_max(unsigned n) noexcept {
    {
        lock_scope lk(mu_);
        if (n == max_) return;
        max_ = n;
        work_seq_.fetch_add(1, std::memory_order_release);
    }
    futex_wake(&work_seq_, INT_MAX);  // threads beyond the bound exit
}

void blocking_pool::set_keep_alive(std::int64_t ns) noexcept {
    {
        lock_scope lk(mu_);
        keep_alive_ns_ = ns;
        work_seq_.fetch_add(1, std::memory_order_release);
    }
    futex_wake(&work_seq_, INT_MAX);  // sleepers recompute their timeout
}

unsigned blocking_pool::threads() noexcept {
    lock_scope lk(mu_);
    return threads_;
}

void blocking_pool::reserve() {
    in_flight_.fetch_add(1, std::memory_order_seq_cst);
    bool start = false;
    {
        lock_scope lk(mu_);
        ++wanted_;
        if (free_ < wanted_ && threads_ < max_) {
            ++threads_;
            ++free_;  // a starting thread looks at the queue before it sleeps
            start = true;
        }
    }
    if (!start) return;
    try {
        std::thread([this] { thread_main(); }).detach();
    } catch (...) {
        // No thread: fine while another exists (it will get to the call);
        // with none at all the call could never run.
        bool none;
        {
            lock_scope lk(mu_);
            --threads_;
            --free_;
            none = threads_ == 0;
            if (none) --wanted_;
        }
        if (none) {
            finished_one();
            throw;
        }
    }
}

void blocking_pool::submit(blocking_task* t) noexcept {
    san::tsan_release(t);  // the call, to the pool thread (TSan: sanitizers/hooks.hpp)
    t->next = nullptr;
    bool wake;
    {
        lock_scope lk(mu_);
        if (tail_)
            tail_->next = t;
        else
            head_ = t;
        tail_ = t;
        work_seq_.fetch_add(1, std::memory_order_release);
        wake = sleepers_ > 0;
    }
    if (wake) futex_wake(&work_seq_, 1);
}

void blocking_pool::finished_one() noexcept {
    if (in_flight_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        drainers_.load(std::memory_order_seq_cst) > 0)
        futex_wake(&in_flight_, INT_MAX);
}

// A drainer that reads in_flight_ != 0 sleeps on it; the call that takes it
// to zero then sees drainers_ (both seq_cst) and wakes it, or the drainer's
// futex finds the word changed.
void blocking_pool::wait_idle() noexcept {
    drainers_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
        const std::uint32_t n = in_flight_.load(std::memory_order_seq_cst);
        if (n == 0) break;
        futex_wait(&in_flight_, n);
    }
    drainers_.fetch_sub(1, std::memory_order_seq_cst);
}

// Takes calls in FIFO order while there are any; sleeps when there are
// none; exits after keep_alive without one, or when beyond the bound —
// but only while the other free threads still cover the reserved calls
// (free_ > wanted_), so that no reserved call is left without a thread.
namespace {
thread_local bool pool_thread = false;
}  // namespace

bool blocking_pool::on_pool_thread() noexcept {
    return pool_thread;
}

void blocking_pool::thread_main() noexcept {
    pthread_setname_np(pthread_self(), "goro-blocking");
    pool_thread = true;
    std::int64_t idle_since = now_ns();
    mu_.lock();
    for (;;) {
        if (blocking_task* t = head_) {
            head_ = t->next;
            if (!head_) tail_ = nullptr;
            --wanted_;
            --free_;
            mu_.unlock();
            san::tsan_acquire(t);
            t->execute(t);  // the task may be gone once it returns
            finished_one();
            idle_since = now_ns();
            mu_.lock();
            ++free_;
            continue;
        }
        const std::int64_t left = idle_since + keep_alive_ns_ - now_ns();
        if ((threads_ > max_ || left <= 0) && free_ > wanted_) break;
        const std::uint32_t seq = work_seq_.load(std::memory_order_acquire);
        ++sleepers_;
        mu_.unlock();
        // One past its keep-alive that must stay (it covers a reserved call
        // not yet submitted) looks again after a second, or at the submit.
        futex_wait_for(&work_seq_, seq, left > 0 ? left : 1'000'000'000);
        mu_.lock();
        --sleepers_;
    }
    --free_;
    --threads_;
    mu_.unlock();
}

}  // namespace goro::detail
