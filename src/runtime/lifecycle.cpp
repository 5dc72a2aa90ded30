// runtime/lifecycle.cpp — starting and stopping the process-wide runtime,
// and goro::run.
//
// There is at most one scheduler at a time. It is started by run(), or
// lazily by the first go()/timer from outside run(); a lazily started one
// lives until the next run() ends or the process exits. The shutdown steps
// are listed in scheduler/scheduler.hpp.
//
// Lock order: lifecycle_mu -> (scheduler locks). g_sched is written only
// under lifecycle_mu and read lock-free.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "goro/errors.hpp"
#if defined(GORO_ASAN)
#include <sanitizer/lsan_interface.h>
#endif
#include "goro/runtime.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

extern std::atomic<bool> g_shutting_down;
void install_overflow_handler();
void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;

namespace {

ranked_mutex lifecycle_mu{lock_rank::lifecycle};
std::atomic<scheduler*> g_sched{nullptr};
bool run_active = false;     // guarded by lifecycle_mu
bool atexit_hooked = false;  // guarded by lifecycle_mu

constexpr unsigned max_procs = 4096;

// GORO_MAXPROCS, parsed: 0 when unset; throws misuse_error when malformed.
unsigned procs_from_env() {
    const char* env = std::getenv("GORO_MAXPROCS");
    if (!env) return 0;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (end == env || *end != 0 || errno != 0 || env[0] == '-' || v == 0 || v > max_procs)
        throw misuse_error(std::string("goro: GORO_MAXPROCS=\"") + env +
                           "\": not a worker count (expected 1.." + std::to_string(max_procs) +
                           ")");
    return static_cast<unsigned>(v);
}

unsigned hardware_procs() noexcept {
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

// What the next runtime would use; never throws (a bad GORO_MAXPROCS is
// reported when a runtime starts).
unsigned default_procs() noexcept {
    try {
        if (unsigned n = procs_from_env()) return n;
    } catch (const misuse_error&) {
    }
    return hardware_procs();
}

// The worker count for opts, validated (options::procs, then GORO_MAXPROCS).
unsigned checked_procs(const options& opts) {
    if (opts.procs > max_procs)
        throw misuse_error("goro: options::procs = " + std::to_string(opts.procs) +
                           ": too many workers (expected 0..." + std::to_string(max_procs) +
                           ", 0 = GORO_MAXPROCS or the hardware)");
    unsigned env = procs_from_env();  // validated even when opts.procs overrides it
    if (opts.procs) return opts.procs;
    return env ? env : hardware_procs();
}

scheduler* start_locked(const options& opts) {
    const unsigned procs = checked_procs(opts);
    stack_pool::instance().configure(opts.stack_size);
    install_overflow_handler();
    auto* s = new scheduler(procs);
    s->start();
    g_sched.store(s, std::memory_order_release);
    return s;
}

// Shutdown (the steps are in scheduler/scheduler.hpp). Called with
// lifecycle_mu held and no run() body active.
//
// 1. The flag, then one scan (both seq_cst; the worker's side is
//    scheduler::finish_park): every goroutine whose park has finished and that
//    does not wait through shutdown is claimed, then — outside the stack
//    pool's lock — readied to unwind.
// 2. Sleep on exit_seq until no goroutine is left. Goroutines running at step
//    1 unwind at their next blocking call; parks that wait through shutdown
//    (wait_group::wait, and anything blocking in a destructor during
//    unwinding) complete as the others unwind.
// 3. When nothing has exited for a while and every goroutine left is parked
//    waiting through shutdown, nothing but a plain thread could wake them:
//    first unwind the wait_group waits (after `unwind_waits_after` quiet
//    rounds), then, if only parks in destructors are left, report and
//    abandon them (after `abandon_after` quiet rounds): claimed, never
//    resumed, stacks never reused.
// 4. Stop the workers.
constexpr std::int64_t quiet_round_ns = 20'000'000;  // 20 ms
constexpr int unwind_waits_after = 2;                // 40 ms with no exit
constexpr int abandon_after = 25;                    // 0.5 s with no exit

// Calls f(g, word) for every goroutine record there is.
template <class F>
void for_each_record(F&& f) {
    stack_pool::instance().for_each_slot([&](stack_slot& slot) {
        if (!slot.has_record.load(std::memory_order_acquire)) return;
        goroutine* g = record_of(&slot);
        f(g, g->word.load(std::memory_order_seq_cst));
    });
}

constexpr bool parked_with(std::uint64_t v, std::uint64_t bit) {
    return (v & (park_bits::claimed | bit)) == bit;
}

void report_abandoned(goroutine* g) {
#if defined(GORO_ASAN)
    // Its stack is never freed nor reused: what it refers to (an exception
    // in flight, say) is not a leak. Let LeakSanitizer look there.
    __lsan_register_root_region(reinterpret_cast<void*>(g->slot->lo), g->slot->hi - g->slot->lo);
#endif
    std::fprintf(stderr,
                 "goro: shutdown: abandoning goroutine %llu (created at %s:%u), blocked in "
                 "%s in a destructor during unwinding with nothing left to wake it; its "
                 "stack is leaked\n",
                 static_cast<unsigned long long>(g->id), g->where.file_name(),
                 static_cast<unsigned>(g->where.line()),
                 to_string(g->reason.load(std::memory_order_relaxed)));
}

// Claims every goroutine parked with `bit`.
std::vector<goroutine*> claim_parked(std::uint64_t bit) {
    std::vector<goroutine*> claimed;
    for_each_record([&](goroutine* g, std::uint64_t v) {
        if (parked_with(v, bit) &&
            g->word.compare_exchange_strong(v, v | park_bits::claimed, std::memory_order_acq_rel))
            claimed.push_back(g);
    });
    return claimed;
}

// Step 3, after `quiet` rounds with no exit. True if it acted.
bool resolve_stuck(scheduler* s, int quiet) {
    if (quiet < unwind_waits_after) return false;
    std::int64_t waits = 0, exempt = 0;
    for_each_record([&](goroutine*, std::uint64_t v) {
        if (parked_with(v, park_bits::parked_waits)) ++waits;
        if (parked_with(v, park_bits::parked_exempt)) ++exempt;
    });
    if (waits + exempt == 0 || waits + exempt != s->live()) return false;
    if (waits > 0) {
        for (goroutine* g : claim_parked(park_bits::parked_waits)) {
            g->unwind_requested = true;
            s->ready(g, false);
        }
        return true;
    }
    if (quiet < abandon_after) return false;
    std::vector<goroutine*> given_up = claim_parked(park_bits::parked_exempt);
    for (goroutine* g : given_up) report_abandoned(g);
    s->abandoned.fetch_add(static_cast<std::int64_t>(given_up.size()), std::memory_order_seq_cst);
    return true;
}

void shutdown_locked(scheduler* s) {
    g_shutting_down.store(true, std::memory_order_seq_cst);  // 1
    std::vector<std::pair<goroutine*, std::uint64_t>> parked;
    for_each_record([&](goroutine* g, std::uint64_t v) {
        if (parked_with(v, park_bits::parked)) parked.emplace_back(g, v);
    });
    for (auto [g, v] : parked) s->claim_for_unwind(g, v);

    int quiet = 0;  // 2
    for (;;) {
        const std::uint32_t seq = s->exit_seq.load(std::memory_order_seq_cst);
        if (s->live() <= 0) break;
        futex_wait_for(&s->exit_seq, seq, quiet_round_ns);
        if (s->exit_seq.load(std::memory_order_seq_cst) != seq) {
            quiet = 0;
            continue;
        }
        if (resolve_stuck(s, ++quiet)) quiet = 0;  // 3
    }
    s->stop();  // 4
    g_sched.store(nullptr, std::memory_order_release);
    delete s;
    g_shutting_down.store(false, std::memory_order_seq_cst);
}

void shutdown_at_exit() {
    lock_scope lk(lifecycle_mu);
    if (scheduler* s = g_sched.load(std::memory_order_acquire); s && !run_active)
        shutdown_locked(s);
}

}  // namespace

scheduler* current_scheduler() noexcept {
    return g_sched.load(std::memory_order_acquire);
}

scheduler* ensure_runtime() {
    if (scheduler* s = g_sched.load(std::memory_order_acquire)) [[likely]]
        return s;
    lock_scope lk(lifecycle_mu);
    if (scheduler* s = g_sched.load(std::memory_order_acquire)) return s;
    if (!atexit_hooked) {
        std::atexit(&shutdown_at_exit);
        atexit_hooked = true;
    }
    return start_locked(options{});
}

int run_main(const options& opts, void (*entry)(void*), void* fn, int*) {
    if (this_goroutine_record())
        throw misuse_error("goro::run: called from inside a goroutine (use goro::go)");
    scheduler* s;
    {
        lock_scope lk(lifecycle_mu);
        if (run_active) throw misuse_error("goro::run: another goro::run is already active");
        const unsigned procs = checked_procs(opts);
        s = g_sched.load(std::memory_order_acquire);
        if (s && opts.procs != 0 && procs != s->nprocs) {
            // A lazily started runtime with another shape: replace it.
            shutdown_locked(s);
            s = nullptr;
        }
        if (!s) s = start_locked(opts);  // throws misuse_error on a bad stack setting
        run_active = true;
    }
    struct main_state {
        void (*entry)(void*);
        void* fn;
        std::exception_ptr error;
        parker* caller;
    } st{entry, fn, nullptr, current_parker()};

    begin_park(st.caller);
    spawn(
        [&st] {
            try {
                st.entry(st.fn);
            } catch (const goroutine_unwind&) {
                throw;
            } catch (...) {
                st.error = std::current_exception();
            }
            if (claim(st.caller)) ready(st.caller);
        },
        goro::source_location::current());
    park(wait_reason::run, nullptr, nullptr);

    {
        lock_scope lk(lifecycle_mu);
        shutdown_locked(s);
        run_active = false;
    }
    if (st.error) std::rethrow_exception(st.error);
    return 0;
}

}  // namespace goro::detail

namespace goro {

unsigned maxprocs() noexcept {
    if (detail::scheduler* s = detail::current_scheduler()) return s->nprocs;
    return detail::default_procs();
}

std::size_t num_goroutines() noexcept {
    detail::scheduler* s = detail::current_scheduler();
    if (!s) return 0;
    std::int64_t n = s->live();
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace goro
