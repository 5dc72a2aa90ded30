// parking/futex.cpp — the OS sleep under every parked thread: Linux futexes.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include "goro/detail/spin_mutex.hpp"

namespace goro::detail {

namespace {
// The futex calls run on behalf of a goroutine (a contended internal lock, a
// park), whose errno must come out as it went in (errno travels with the
// goroutine; a FUTEX_WAIT that finds the word changed sets EAGAIN).
struct errno_guard {
    int saved = errno;
    ~errno_guard() { errno = saved; }
};
}  // namespace

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected) noexcept {
    errno_guard keep;
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected,
              nullptr, nullptr, 0);
}

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept {
    errno_guard keep;
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                static_cast<long>(timeout_ns % 1'000'000'000)};
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected, &ts,
              nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>* addr, int count) noexcept {
    errno_guard keep;
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, count, nullptr,
              nullptr, 0);
}

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

}  // namespace goro::detail
