// diagnostics/panic.cpp — the fatal paths: an exception escaping a goroutine,
// a stack overflow (a fault in the guard below the stack, a stack pointer
// below the slot, or a broken canary). Each writes one message naming the
// goroutine and where it was started, then aborts.
//
// Invariants: the SIGSEGV handler runs on a per-worker alternate signal
// stack, since the faulting stack has no room left, and uses only
// async-signal-safe calls; it claims a fault only when it hits the guard
// page (or the 256 KiB below the running goroutine's stack, for frames that
// jumped it) or when the stack pointer has left the slot, and hands every
// other fault to the handler installed before it. The canary page of an
// unguarded slot (its lowest page, below the stack, where a guarded slot has
// its guard) must be all zero: its top 256 bytes are read on every switch
// away from the goroutine, the whole page at its exit, whatever the stack
// pointer says.
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::size_t alt_stack_size = 64 << 10;
// How far below the stack a fault still counts as an overflow: a frame
// larger than the guard page may land beyond it.
constexpr std::uintptr_t below_guard_window = 64 * page_size;
// How much of the canary page a switch reads (the whole page at exit).
constexpr std::size_t canary_switch_bytes = 256;
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
    std::uintptr_t sp = 0;
#if defined(__x86_64__)
    sp = static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
    sp = static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.sp);
#endif
    // In a direct switch, between its CAS and its jump, `current` already
    // names the next goroutine while the leaving one's stack runs (its
    // park's deepest frames: worker::leaving). The fault is the leaving
    // one's when the stack pointer is not in the next one's slot (which
    // runs from the jump on) but in the leaving one's, or just below it.
    if (worker* w = this_worker())
        if (goroutine* l = w->leaving.load(std::memory_order_relaxed); l && l->slot)
            if (!(g && g->slot && sp >= g->slot->lo && sp < g->slot->hi) && sp < l->slot->hi &&
                sp + below_guard_window >= l->slot->lo)
                g = l;
    if (g && g->slot) {
        auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
        const std::uintptr_t lo = g->slot->lo;
        // The guard page (lo - page_size .. lo, or a frame so large it
        // jumped a little past it), or a stack pointer below the stack
        // (unguarded slots: through the canary page and beyond). lo - addr
        // is the distance below the stack and cannot wrap.
        const bool below_stack = addr < lo && lo - addr <= below_guard_window;
        if (below_stack || (sp != 0 && sp < lo)) {
            const char* how = "ran below its slot";
            if (g->slot->guard == stack_guard::region)
                how = "guard region hit";
            else if (g->slot->guard == stack_guard::page)
                how = "guard page hit";
            report_overflow(g, how);
        }
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

namespace {

// Whether the `bytes` just below lo are all zero. Sanitizers stay out: the
// canary page may hold a dead frame's redzone (ASan), and this read is no
// access to shared data (TSan).
#if defined(GORO_INSTRUMENTED_ASAN)
__attribute__((no_sanitize("address")))
#elif defined(GORO_INSTRUMENTED_TSAN)
__attribute__((no_sanitize("thread")))
#endif
bool canary_intact(const goroutine* g, std::size_t bytes) noexcept {
    const auto* p = reinterpret_cast<const std::uintptr_t*>(g->stack_lo - bytes);
    std::uintptr_t any = 0;
    for (std::size_t i = 0; i < bytes / sizeof(std::uintptr_t); ++i) any |= p[i];
    return any == 0;
}

}  // namespace

// A guarded stack faults instead. For an unguarded one, the canary is read
// whatever the stack pointer is now: a deep recursion may have come back
// before this switch. At a switch, the top 256 bytes of the canary page
// (every frame smaller than that which ran off the stack left its return
// address there; reading the whole page would add ~100 ns to every switch);
// at exit, the whole page (every frame smaller than a page). Untouched, the
// page is the shared zero page: no RSS, cache-hot.
void check_stack_canary(goroutine* g) noexcept {
    if (!g->guarded && !canary_intact(g, canary_switch_bytes))
        report_overflow(g, "canary overwritten; neighbouring stack may be corrupt");
}

void check_stack_canary_on_exit(goroutine* g) noexcept {
    if (!g->guarded && !canary_intact(g, page_size))
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
