// parking/futex.cpp — the OS sleep under every parked thread: Linux futexes.
//
// Callers treat every return as "maybe woken" and recheck their word, so a
// wait may end early (EINTR, a spurious wake); futex_wait_for never ends
// later than its timeout.
//
// Under ThreadSanitizer (a program run with TSan, goro compiled with it or
// not: sanitizers/hooks.hpp) a sleep is cut into slices of
// `tsan_slice_ns`, each followed by an intercepted call (a clock read).
// TSan runs a signal handler only when the thread that received the signal
// is inside an intercepted blocking call, or when it next enters an
// intercepted call; a raw futex system call is neither. A process-directed
// signal goes to the main thread first, which is typically asleep here in
// goro::run, or to an idle worker: its handler (goro::signal_notify's, or
// the program's own) would wait until that thread woke, maybe forever. The
// slices bound that to a few milliseconds; other programs sleep in one go.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include "goro/detail/spin_mutex.hpp"
#include "sanitizers/hooks.hpp"

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

namespace {

long futex_sleep(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                 const timespec* timeout) noexcept {
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE,
                     expected, timeout, nullptr, 0);
}

timespec to_timespec(std::int64_t ns) noexcept {
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

constexpr std::int64_t tsan_slice_ns = 5'000'000;

// An intercepted call: TSan runs the signal handlers pending for this thread.
std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// One slice of at most `left` ns; true if the wait is over (woken, the word
// changed, interrupted), false if the slice ran out with the word unchanged.
bool sleep_slice(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                 std::int64_t left) noexcept {
    const timespec ts = to_timespec(left < tsan_slice_ns ? left : tsan_slice_ns);
    const long r = futex_sleep(addr, expected, &ts);
    const bool timed_out = r != 0 && errno == ETIMEDOUT;
    (void)monotonic_ns();
    return !timed_out || addr->load(std::memory_order_relaxed) != expected;
}

}  // namespace

void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected) noexcept {
    errno_guard keep;
    if (san::tsan()) [[unlikely]] {
        while (!sleep_slice(addr, expected, tsan_slice_ns)) {
        }
        return;
    }
    futex_sleep(addr, expected, nullptr);
}

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept {
    errno_guard keep;
    if (san::tsan()) [[unlikely]] {
        const std::int64_t deadline = monotonic_ns() + timeout_ns;
        for (std::int64_t left = timeout_ns; left > 0; left = deadline - monotonic_ns())
            if (sleep_slice(addr, expected, left)) return;
        return;
    }
    const timespec ts = to_timespec(timeout_ns);
    futex_sleep(addr, expected, &ts);
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
