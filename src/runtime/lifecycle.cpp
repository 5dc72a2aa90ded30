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
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "goro/errors.hpp"
#include "goro/runtime.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

extern std::atomic<bool> g_shutting_down;
void install_overflow_handler();

namespace {

std::mutex lifecycle_mu;
std::atomic<scheduler*> g_sched{nullptr};
bool run_active = false;     // guarded by lifecycle_mu
bool atexit_hooked = false;  // guarded by lifecycle_mu

unsigned default_procs() noexcept {
    if (const char* env = std::getenv("GORO_MAXPROCS")) {
        char* end = nullptr;
        unsigned long v = std::strtoul(env, &end, 10);
        if (end != env && v > 0 && v < 4096) return static_cast<unsigned>(v);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

scheduler* start_locked(const options& opts) {
    stack_pool::instance().configure(opts.stack_size);
    install_overflow_handler();
    auto* s = new scheduler(opts.procs ? opts.procs : default_procs());
    s->start();
    g_sched.store(s, std::memory_order_release);
    return s;
}

// Steps 1-3 of shutdown. Called with lifecycle_mu held and no run() body active.
void shutdown_locked(scheduler* s) {
    g_shutting_down.store(true, std::memory_order_seq_cst);
    // Claim and ready every parked goroutine; rescan only when the count
    // stops falling (a goroutine that was running may park again later).
    std::int64_t left = s->live();
    while (left > 0) {
        stack_pool::instance().for_each_slot([&](stack_slot& slot) {
            goroutine* g = record_of(&slot);
            if (g->state.load(std::memory_order_acquire) == g_state::waiting && claim(g)) {
                g->unwinding = true;
                s->ready(g, false);
            }
        });
        for (;;) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            std::int64_t now = s->live();
            if (now == 0 || now == left) {
                left = now;
                break;
            }
            left = now;
        }
    }
    s->stop();
    g_sched.store(nullptr, std::memory_order_release);
    delete s;
    g_shutting_down.store(false, std::memory_order_seq_cst);
}

void shutdown_at_exit() {
    std::lock_guard lk(lifecycle_mu);
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
    std::lock_guard lk(lifecycle_mu);
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
        std::lock_guard lk(lifecycle_mu);
        if (run_active) throw misuse_error("goro::run: another goro::run is already active");
        s = g_sched.load(std::memory_order_acquire);
        if (s && opts.procs != 0 && opts.procs != s->nprocs) {
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
        std::lock_guard lk(lifecycle_mu);
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
