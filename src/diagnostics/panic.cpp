// diagnostics/panic.cpp — the fatal paths: an exception escaping a goroutine,
// a stack overflow (guard-page fault or a broken canary). Each writes one
// message naming the goroutine and where it was started, then aborts. The
// SIGSEGV handler runs on a per-worker alternate signal stack, since the
// faulting stack has no room left; it uses only async-signal-safe calls.
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::size_t alt_stack_size = 64 << 10;
constexpr std::uintptr_t canary_window = 64 << 10;
thread_local void* alt_stack = nullptr;
std::once_flag handler_once;
struct sigaction previous_segv;

// Formats without allocating (signal context): appends s to buf.
void append(char* buf, std::size_t cap, std::size_t& len, const char* s) noexcept {
    while (*s && len + 1 < cap) buf[len++] = *s++;
    buf[len] = 0;
}
void append_u(char* buf, std::size_t cap, std::size_t& len, unsigned long long v) noexcept {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0 && len + 1 < cap) buf[len++] = tmp[--n];
    buf[len] = 0;
}

[[noreturn]] void report_overflow(goroutine* g, const char* how) noexcept {
    char buf[512];
    std::size_t len = 0;
    append(buf, sizeof buf, len, "goro: fatal error: stack overflow: goroutine ");
    append_u(buf, sizeof buf, len, g->id);
    append(buf, sizeof buf, len, " overflowed its ");
    append_u(buf, sizeof buf, len, (g->slot->hi - g->slot->lo) >> 10);
    append(buf, sizeof buf, len, " KiB stack (");
    append(buf, sizeof buf, len, how);
    append(buf, sizeof buf, len, "); created at ");
    append(buf, sizeof buf, len, g->where.file_name());
    append(buf, sizeof buf, len, ":");
    append_u(buf, sizeof buf, len, g->where.line());
    append(buf, sizeof buf, len, "\n");
    ssize_t ignored = ::write(2, buf, len);
    (void)ignored;
    std::abort();
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
    goroutine* g = this_goroutine_record();
    if (g && g->slot) {
        auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
        const std::uintptr_t lo = g->slot->lo;
        std::uintptr_t sp = 0;
#if defined(__x86_64__)
        sp =
            static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
        sp = static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.sp);
#endif
        // The guard page (or a frame so large it jumped a little past it), or
        // a stack pointer that has left the slot (unguarded slots).
        if ((addr < lo && addr + 64 * page_size >= lo) || (sp != 0 && sp < lo))
            report_overflow(g, g->slot->guarded ? "guard page hit" : "ran below its slot");
    }
    // Not ours: hand over to whoever was installed before, else die as usual.
    if (previous_segv.sa_flags & SA_SIGINFO) {
        if (previous_segv.sa_sigaction) return previous_segv.sa_sigaction(sig, info, uctx);
    } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
        return previous_segv.sa_handler(sig);
    }
    signal(sig, SIG_DFL);  // returning re-executes the access, which now kills
}

}  // namespace

void install_overflow_handler() {
    std::call_once(handler_once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = &on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
    });
}

void install_alt_stack() noexcept {
    alt_stack = std::malloc(alt_stack_size);
    if (!alt_stack) return;
    stack_t ss{};
    ss.ss_sp = alt_stack;
    ss.ss_size = alt_stack_size;
    sigaltstack(&ss, nullptr);
}

void remove_alt_stack() noexcept {
    if (!alt_stack) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    std::free(alt_stack);
    alt_stack = nullptr;
}

void check_stack_canary(goroutine* g) noexcept {
    // Only an unguarded stack that has come near its bottom can have
    // overflowed it; skipping the rest keeps the cold canary page (and the
    // slot descriptor) out of the hot path.
    if (g->guarded || g->low_water == 0 || g->low_water - g->stack_lo > canary_window) return;
    if (*reinterpret_cast<volatile std::uintptr_t*>(g->stack_lo) != 0)
        report_overflow(g, "canary overwritten; neighbouring stack may be corrupt");
}

[[noreturn]] void panic_escaped(goroutine* g, const char* what) noexcept {
    std::fprintf(stderr,
                 "goro: panic: uncaught exception in goroutine %llu (created at %s:%u in %s): "
                 "%s\n",
                 static_cast<unsigned long long>(g->id), g->where.file_name(),
                 static_cast<unsigned>(g->where.line()), g->where.function_name(), what);
    std::fflush(stderr);
    std::abort();
}

}  // namespace goro::detail
