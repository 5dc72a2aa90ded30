// goro_soak — a soak program: repeated rounds of goro::run, each a randomized
// (seeded) workload mixing every primitive, with cancellations and with
// deliberate mid-flight shutdowns, that accounts for every item end to end.
//
//   goro_soak [--seconds N] [--procs N] [--seed N] [--first-round N]
//             [--max-rounds N] [--report N] [--round-timeout S]
//             [--expose-known-bugs]
//
// Runs rounds until --seconds have passed (default 30) on --procs workers
// (default 8). Prints a summary line every --report rounds and finally
// `soak: OK rounds=R items=I seconds=S`; on the first violated invariant it
// prints `soak: FAIL seed=... round=...: what` and exits 1 at once. Round r
// of seed s always builds the same workload (`--seed s --first-round r`
// repeats it; the interleaving is, of course, the scheduler's).
//
// Items. Every item is a move-only token (`item`) carrying a unique 64-bit
// id (round in the high half, index in the low half) and a check word. The
// per-round ledger has one state byte per planned id, and every id ends in
// exactly one state:
//   produced + consumed     taken off the pipeline by a sink (under a mutex)
//   produced + dropped      handed back by a deliberate cancellation: a
//                           cancelled producer's in-hand item, a cancelled
//                           sink's batch, a semaphore acquire that timed
//                           out, an errgroup task after the group failed
//   unsent                  never produced: a cancelled producer records the
//                           ids it will never send
//   produced + unwound      the token was destroyed while still live: only
//                           legal in a shutdown round after run()'s body
//                           returned (a goroutine unwound holding it, or a
//                           channel/queue destroyed with it inside)
// Marking a second final state is a duplicate and fails at once; a token
// destroyed live outside a shutdown is a loss and fails at once; after the
// round, an id left merely "produced" was leaked (lost) and fails. So in a
// normal round produced == consumed + dropped exactly, and in a shutdown
// round produced == consumed + dropped + unwound with nothing duplicated.
//
// Goroutines. Every goroutine's closure carries a witness (made/freed) and
// its body another (started/ended): after run() every started body ended and
// num_goroutines() is 0; after the round's state is destroyed every closure
// (including after_func and context_after_func ones) was freed. Two kinds of
// destructor block on purpose, and must complete during shutdown too: an
// RAII joiner whose destructor waits on a wait_group, and a guard whose
// destructor locks a contended goro::mutex.
//
// Topology of a round (each part present or sized at random):
//
//   producers (goroutines, goroutines spawned by a plain thread, a plain
//   thread) --src--> fan-out workers (joined by an RAII joiner) --route-->
//     0: select {send lane a | send lane b | default}, then {.. | after()}
//     1: cond queue (mutex + 2 conds) --> cond workers --> lanes
//     2: errgroup task (set_limit, some fail) consumes directly
//     3: after_func (some stopped, some reset) --> lanes
//     4: plain relay thread --> lanes
//   lanes --> mergers (dynamic select: recv every lane | send held to mid)
//   mid --> sinks (select: mid | after() | ticker | timer | ctx.done() |
//           send progress), batch under semaphore (ctx with timeout),
//           consumed under a mutex, rw_mutex-protected pair bumped
//       --> a plain sink thread
//   plus: a mutex holder, an rw_mutex monitor, a canceller (context tree,
//   context_after_func with stop), a once with a failing first attempt.
#include <cxxabi.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;
using std::chrono::microseconds;

namespace {

// ---------------------------------------------------------------- build kind

constexpr bool tsan_build =
#if defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

constexpr bool asan_build =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// Sanitizers scale the work per round, not the duration.
constexpr std::uint64_t work_divisor = tsan_build ? 6 : asan_build ? 3 : 1;
constexpr const char* build_name = tsan_build ? "tsan" : asan_build ? "asan" : "plain";

// ------------------------------------------------------------------ failing

std::uint64_t g_seed = 0;
std::atomic<std::uint64_t> g_round{0};
std::mutex g_desc_mu;
std::string g_desc;  // the current round's configuration; guarded by g_desc_mu
std::atomic<bool> g_failing{false};
// Known goro bugs (tests/soak_found_test.cpp, docs/testing.md). By default
// the soak steps around them and counts their hits; --expose-known-bugs
// makes them failures:
//   1. A blocking call in a destructor entered by a normal scope exit (not by
//      unwinding) while run() shuts down: goro throws goroutine_unwind out of
//      the noexcept destructor, std::terminate. By default the blocking
//      destructors here do their blocking work before the scope ends, so
//      they block in the destructor only while unwinding.
//   2. timer::stop() racing its own fire (the heap popped the timer, fire()
//      has not run yet) returns false, yet an after_func's function never
//      runs (and a channel timer never delivers). By default an after_func
//      item stranded that way is dropped and counted.
//   3. A timer firing at the very end of shutdown (after the last goroutine
//      exited, before the workers stop) starts an after_func or
//      context_after_func goroutine that never runs nor unwinds: its closure
//      is never destroyed, its stack never reused. By default each such
//      leaked closure must match one stranded goroutine record (listed by
//      dump_goroutines after run()), and is counted.
//   4. A plain thread that wakes a goroutine (a channel handoff, a close, a
//      mutex unlock, ...) is still inside ready() — scheduler::wakep reads the
//      scheduler — when that goroutine finishes, run() returns and deletes
//      the scheduler (TSan: data race on the delete; a use-after-free if the
//      thread is preempted there). By default plain threads tell goroutines
//      they are done through atomic flags (not channel closes), and in a
//      shutdown round they are stopped before the body returns; with
//      --expose-known-bugs they keep running through the shutdown.
bool g_expose_known_bugs = true;  // the bugs are fixed: check them (see docs/testing.md)
std::atomic<std::uint64_t> g_stranded_after_funcs{0};  // known bug 2 hits
std::uint64_t g_stranded_goroutines = 0;               // known bug 3 hits (main thread)

void print_both(const std::string& s) {
    std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
    std::fputs(s.c_str(), stderr);
    std::fflush(stderr);
}

// Prints the seed, round and what went wrong, then exits 1 at once (from any
// goroutine or thread; nothing is unwound).
[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
    if (g_failing.exchange(true)) {
        // Someone else is reporting; it will exit.
        for (;;) std::this_thread::sleep_for(1s);
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::string desc;
    {
        std::lock_guard lk(g_desc_mu);
        desc = g_desc;
    }
    const unsigned long long seed = g_seed, round = g_round.load();
    char head[512];
    std::snprintf(head, sizeof head, "soak: FAIL seed=%llu round=%llu: ", seed, round);
    char tail[160];
    std::snprintf(tail, sizeof tail, "\n  repeat: goro_soak --seed %llu --first-round %llu%s\n",
                  seed, round, g_expose_known_bugs ? " --expose-known-bugs" : "");
    print_both(std::string(head) + msg + "\n  round: " + desc + tail);
    std::_Exit(1);
}

// std::terminate (an exception out of a noexcept function, e.g. known bug 1)
// is a failure with the seed and round too.
void on_terminate() {
    const std::type_info* t = abi::__cxa_current_exception_type();
    std::string name = t ? t->name() : "no exception";
    if (t) {
        int status = 0;
        if (char* d = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status)) {
            name = d;
            std::free(d);
        }
    }
    fail("std::terminate with %s in flight%s", name.c_str(),
         name == "goro::detail::goroutine_unwind"
             ? " (thrown out of a noexcept destructor: known bug 1)"
             : "");
}

#define SOAK_CHECK(cond, ...)           \
    do {                                \
        if (!(cond)) fail(__VA_ARGS__); \
    } while (0)

// ---------------------------------------------------------------------- rng

std::uint64_t mix(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct rng {
    std::uint64_t s;
    explicit rng(std::uint64_t seed) : s(seed) {}
    std::uint64_t next() {
        s += 0x9E3779B97F4A7C15ull;
        return mix(s);
    }
    std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
    // Uniform in [lo, hi].
    std::int64_t range(std::int64_t lo, std::int64_t hi) {
        return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
    }
    bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }
    template <class T, std::size_t N>
    T pick(const T (&a)[N]) {
        return a[below(N)];
    }
    rng fork(std::uint64_t salt) { return rng(mix(next() ^ mix(salt))); }
};

microseconds us(std::int64_t n) {
    return microseconds(n);
}

// ------------------------------------------------------------------- ledger

enum : std::uint8_t {
    st_produced = 1,
    st_consumed = 2,
    st_dropped = 4,
    st_unwound = 8,
    st_unsent = 16,
};

std::string describe_state(std::uint8_t v) {
    std::string s;
    auto add = [&](std::uint8_t bit, const char* name) {
        if (v & bit) s += s.empty() ? name : std::string("+") + name;
    };
    add(st_produced, "produced");
    add(st_consumed, "consumed");
    add(st_dropped, "dropped");
    add(st_unwound, "unwound");
    add(st_unsent, "unsent");
    return s.empty() ? "nothing" : s;
}

struct ledger {
    std::uint64_t round_tag = 0;  // (round + 1) << 32
    std::uint64_t n = 0;          // planned ids
    std::unique_ptr<std::atomic<std::uint8_t>[]> st;
    std::atomic<std::uint64_t> produced{0}, consumed{0}, dropped{0}, unwound{0}, unsent{0};
    // Set when a shutdown round's body returns: live tokens may die from then.
    std::atomic<bool> unwinding_allowed{false};

    ledger(std::uint64_t round, std::uint64_t count)
        : round_tag((round + 1) << 32), n(count), st(new std::atomic<std::uint8_t>[count]) {
        for (std::uint64_t k = 0; k < n; ++k) st[k].store(0, std::memory_order_relaxed);
    }
};

std::atomic<ledger*> g_ledger{nullptr};
struct round_state;
std::atomic<round_state*> g_state{nullptr};  // the running round (hang reports)

ledger& the_ledger(const char* what) {
    ledger* L = g_ledger.load(std::memory_order_acquire);
    if (!L) fail("%s: an item outside any round", what);
    return *L;
}

std::uint64_t check_word(std::uint64_t id) {
    return mix(id ^ g_seed ^ 0x5bd1e9955bd1e995ull);
}

// A unique item: move-only, its id travels with it. Destroying one that is
// still live (neither consumed nor dropped) is a loss, except while a
// shutdown round unwinds.
class item {
  public:
    item() = default;
    item(item&& o) noexcept : id_(std::exchange(o.id_, 0)), chk_(std::exchange(o.chk_, 0)) {}
    item& operator=(item&& o) noexcept {
        if (this != &o) {
            if (id_) destroyed_live();
            id_ = std::exchange(o.id_, 0);
            chk_ = std::exchange(o.chk_, 0);
        }
        return *this;
    }
    item(const item&) = delete;
    item& operator=(const item&) = delete;
    ~item() {
        if (id_) destroyed_live();
    }
    explicit operator bool() const noexcept { return id_ != 0; }

    static item produce(std::uint64_t k);
    // Ends the item: consumed or (deliberately) dropped.
    static void consume(item&& it, const char* where) { it.finish(st_consumed, where); }
    static void drop(item&& it, const char* where) { it.finish(st_dropped, where); }

  private:
    std::uint64_t index(ledger& L, const char* what) const;
    void mark(std::uint8_t bit, const char* what);
    void finish(std::uint8_t bit, const char* where);
    void destroyed_live() noexcept;

    std::uint64_t id_ = 0, chk_ = 0;
};

std::uint64_t item::index(ledger& L, const char* what) const {
    SOAK_CHECK(chk_ == check_word(id_), "%s: item %#" PRIx64 " has a corrupt check word %#" PRIx64,
               what, id_, chk_);
    SOAK_CHECK((id_ & ~0xffffffffull) == L.round_tag,
               "%s: item %#" PRIx64 " belongs to another round", what, id_);
    const std::uint64_t k = id_ & 0xffffffffull;
    SOAK_CHECK(k < L.n, "%s: item %#" PRIx64 " out of range", what, id_);
    return k;
}

void item::mark(std::uint8_t bit, const char* what) {
    ledger& L = the_ledger(what);
    const std::uint64_t k = index(L, what);
    const std::uint8_t prev = L.st[k].fetch_or(bit, std::memory_order_acq_rel);
    SOAK_CHECK(prev & st_produced, "%s: item %#" PRIx64 " was never produced (state %s)", what, id_,
               describe_state(prev).c_str());
    SOAK_CHECK(!(prev & (st_consumed | st_dropped | st_unwound)),
               "%s: item %#" PRIx64 " DUPLICATED: it was already %s", what, id_,
               describe_state(prev).c_str());
}

item item::produce(std::uint64_t k) {
    ledger& L = the_ledger("produce");
    SOAK_CHECK(k < L.n, "produce: index %" PRIu64 " out of range", k);
    const std::uint8_t prev = L.st[k].fetch_or(st_produced, std::memory_order_acq_rel);
    SOAK_CHECK(prev == 0, "produce: index %" PRIu64 " produced twice (state %s)", k,
               describe_state(prev).c_str());
    L.produced.fetch_add(1, std::memory_order_relaxed);
    item it;
    it.id_ = L.round_tag | k;
    it.chk_ = check_word(it.id_);
    return it;
}

void item::finish(std::uint8_t bit, const char* where) {
    SOAK_CHECK(id_ != 0, "%s: finishing an empty (moved-from) item", where);
    mark(bit, where);
    ledger& L = *g_ledger.load(std::memory_order_acquire);
    (bit == st_consumed ? L.consumed : L.dropped).fetch_add(1, std::memory_order_relaxed);
    id_ = 0;
    chk_ = 0;
}

void item::destroyed_live() noexcept {
    ledger& L = the_ledger("item destructor");
    // A live token whose id already ended is a duplicate, whatever the round.
    const std::uint8_t seen = L.st[index(L, "item destructor")].load(std::memory_order_acquire);
    SOAK_CHECK(!(seen & (st_consumed | st_dropped | st_unwound)),
               "item %#" PRIx64 " DUPLICATED: a live copy outlived the id, which was already %s",
               id_, describe_state(seen).c_str());
    SOAK_CHECK(L.unwinding_allowed.load(std::memory_order_acquire),
               "item %#" PRIx64
               " LOST: destroyed while live (neither consumed nor dropped) outside a shutdown",
               id_);
    mark(st_unwound, "item destroyed by shutdown");
    L.unwound.fetch_add(1, std::memory_order_relaxed);
    id_ = 0;
}

// Ids [lo, hi) a cancelled producer will never send.
void mark_unsent(std::uint64_t lo, std::uint64_t hi) {
    ledger& L = the_ledger("unsent");
    for (std::uint64_t k = lo; k < hi; ++k) {
        const std::uint8_t prev = L.st[k].fetch_or(st_unsent, std::memory_order_acq_rel);
        SOAK_CHECK(prev == 0, "unsent: index %" PRIu64 " already %s", k,
                   describe_state(prev).c_str());
        L.unsent.fetch_add(1, std::memory_order_relaxed);
    }
}

// ---------------------------------------------------------------- witnesses

// What a goroutine's function was given to.
enum closure_kind : int { k_go, k_after_func, k_errgroup, k_context_after_func, k_kinds };
const char* const kind_names[k_kinds] = {"go/wait_group::go", "after_func", "errgroup task",
                                         "context_after_func"};
std::atomic<std::uint64_t> g_closures_made[k_kinds], g_closures_freed[k_kinds];
std::atomic<std::uint64_t> g_bodies_started{0}, g_bodies_ended{0};

// In every goroutine's closure: counts closures made and destroyed.
struct closure_witness {
    int kind = -1;  // -1: moved from
    explicit closure_witness(int k) : kind(k) {
        g_closures_made[kind].fetch_add(1, std::memory_order_relaxed);
    }
    closure_witness(closure_witness&& o) noexcept : kind(std::exchange(o.kind, -1)) {}
    closure_witness(const closure_witness&) = delete;
    closure_witness& operator=(const closure_witness&) = delete;
    closure_witness& operator=(closure_witness&&) = delete;
    ~closure_witness() {
        if (kind >= 0) g_closures_freed[kind].fetch_add(1, std::memory_order_relaxed);
    }
};

// Closures made and not (yet) destroyed, by kind; empty when none.
std::string closures_outstanding() {
    std::string s;
    for (int k = 0; k < k_kinds; ++k) {
        const std::uint64_t made = g_closures_made[k].load(), freed = g_closures_freed[k].load();
        if (made != freed)
            s += std::string(s.empty() ? "" : ", ") + kind_names[k] + ": made " +
                 std::to_string(made) + " freed " + std::to_string(freed);
    }
    return s;
}

// At the top of every goroutine body: counts bodies started and ended.
struct body_witness {
    body_witness() { g_bodies_started.fetch_add(1, std::memory_order_relaxed); }
    ~body_witness() { g_bodies_ended.fetch_add(1, std::memory_order_relaxed); }
    body_witness(const body_witness&) = delete;
    body_witness& operator=(const body_witness&) = delete;
};

// A goroutine function with both witnesses (move-only, keeps f's result).
template <class F>
auto witnessed(F&& f, closure_kind kind = k_go) {
    return [w = closure_witness{kind}, f = std::forward<F>(f)]() mutable -> decltype(auto) {
        body_witness b;
        return f();
    };
}

goro::context_key<std::uint64_t> round_key;

// --------------------------------------------------------------- the config

struct config {
    bool shutdown = false;
    int shutdown_mode = 0;  // 0: at once, 1: after a delay, 2: after some items
    std::int64_t shutdown_delay_us = 0;
    std::uint64_t shutdown_after_items = 0;
    std::uint64_t n_items = 0;
    int n_prod = 1;
    bool t_spawner = false, t_producer = false, t_relay = false, t_sink = false;
    std::uint64_t spawner_items = 0, producer_items = 0;
    std::size_t src_cap = 0;
    int n_fan = 1;
    std::vector<std::size_t> lane_caps;
    std::size_t cq_cap = 1;
    int n_cq = 1;
    int n_merge = 1;
    std::size_t merge_hold = 1;
    std::size_t mid_cap = 0;
    int n_sinks = 1, n_cancellable_sinks = 0;
    std::uint64_t route_w[5] = {};
    std::int64_t eg_limit = -1;
    std::uint64_t eg_fail_per_mille = 0;
    std::int64_t sem_size = 1;
    bool cancel_prod = false;
    std::int64_t cancel_prod_after_us = 0;
    std::uint64_t prod_timeout_chance = 0;  // out of 8
    int n_caf = 0;
    bool caf_cancels_semgrp = false;

    std::string describe() const {
        char b[640];
        std::snprintf(
            b, sizeof b,
            "%s items=%" PRIu64
            " prod=%d%s%s src_cap=%zu fan=%d lanes=%zu cq=%zu/%d merge=%d/%zu "
            "mid_cap=%zu sinks=%d(cancellable %d)%s routes=%" PRIu64 "/%" PRIu64 "/%" PRIu64
            "/%" PRIu64 "/%" PRIu64 " eg_limit=%" PRId64 " eg_fail=%" PRIu64 "/1000 sem=%" PRId64
            " cancel_prod=%s caf=%d%s%s",
            shutdown ? "SHUTDOWN" : "normal", n_items, n_prod, t_spawner ? " +spawner-thread" : "",
            t_producer ? " +producer-thread" : "", src_cap, n_fan, lane_caps.size(), cq_cap, n_cq,
            n_merge, merge_hold, mid_cap, n_sinks, n_cancellable_sinks,
            t_sink ? " +sink-thread" : "", route_w[0], route_w[1], route_w[2], route_w[3],
            route_w[4], eg_limit, eg_fail_per_mille, sem_size,
            cancel_prod ? std::to_string(cancel_prod_after_us).append("us").c_str() : "no", n_caf,
            t_relay ? " +relay-thread" : "", caf_cancels_semgrp ? " caf-cancels-sem" : "");
        std::string s = b;
        if (shutdown) {
            static const char* modes[] = {"at once", "after delay", "after items"};
            std::snprintf(b, sizeof b, " [return %s: %" PRId64 "us / %" PRIu64 " items]",
                          modes[shutdown_mode], shutdown_delay_us, shutdown_after_items);
            s += b;
        }
        return s;
    }
};

config make_config(rng& r) {
    config c;
    c.shutdown = r.chance(2, 5);
    c.shutdown_mode = static_cast<int>(r.below(3));
    c.shutdown_delay_us = r.chance(1, 4) ? r.range(0, 200) : r.range(200, 8000);
    c.n_items = std::max<std::uint64_t>(
        20, static_cast<std::uint64_t>(r.chance(1, 5) ? r.range(20, 400) : r.range(400, 3000)) /
                work_divisor);
    c.shutdown_after_items = r.below(c.n_items);
    c.n_prod = static_cast<int>(r.range(1, 6));
    c.t_spawner = r.chance(3, 4);
    c.t_producer = r.chance(2, 3);
    c.t_relay = r.chance(2, 3);
    c.t_sink = r.chance(2, 3);
    if (c.t_spawner) c.spawner_items = r.below(c.n_items / 3 + 1);
    if (c.t_producer) c.producer_items = r.below(c.n_items / 4 + 1);
    static const std::size_t caps[] = {0, 0, 1, 4, 16, 64};
    c.src_cap = r.pick(caps);
    c.n_fan = static_cast<int>(r.range(1, 6));
    const int lanes = static_cast<int>(r.range(1, 4));
    for (int i = 0; i < lanes; ++i) c.lane_caps.push_back(r.pick(caps));
    c.cq_cap = static_cast<std::size_t>(r.range(1, 16));
    c.n_cq = static_cast<int>(r.range(1, 4));
    c.n_merge = static_cast<int>(r.range(1, 3));
    c.merge_hold = static_cast<std::size_t>(r.range(1, 4));
    c.mid_cap = r.pick(caps);
    c.n_sinks = static_cast<int>(r.range(1, 5));
    c.n_cancellable_sinks = static_cast<int>(r.below(static_cast<std::uint64_t>(c.n_sinks)));
    for (auto& w : c.route_w) w = r.below(10);
    c.route_w[0] += 1;
    if (!c.t_relay) c.route_w[4] = 0;
    c.eg_limit = r.chance(1, 5) ? -1 : r.range(1, 6);
    static const std::uint64_t fails[] = {0, 0, 5, 50};
    c.eg_fail_per_mille = r.pick(fails);
    c.sem_size = r.range(1, 8);
    c.cancel_prod = r.chance(1, 3);
    c.cancel_prod_after_us = r.range(0, 20000);
    c.prod_timeout_chance = r.below(3);
    c.n_caf = static_cast<int>(r.range(0, 4));
    c.caf_cancels_semgrp = r.chance(1, 4);
    return c;
}

// ------------------------------------------------------------- round state

// A bounded FIFO of items on a goro::mutex and two goro::conds.
struct cond_queue {
    goro::mutex m;
    goro::cond not_empty{m}, not_full{m};
    std::deque<item> q;  // guarded by m
    std::size_t cap = 1;
    bool closed = false;  // guarded by m

    // False (it untouched) if the queue is closed.
    bool push(item& it, bool signal_under_lock) {
        std::unique_lock lk(m);
        not_full.wait(lk, [&] { return closed || q.size() < cap; });
        if (closed) return false;
        q.push_back(std::move(it));
        if (signal_under_lock) {
            not_empty.signal();
        } else {
            lk.unlock();
            not_empty.signal();
        }
        return true;
    }
    std::optional<item> pop() {
        std::unique_lock lk(m);
        not_empty.wait(lk, [&] { return closed || !q.empty(); });
        if (q.empty()) return std::nullopt;
        std::optional<item> it(std::move(q.front()));
        q.pop_front();
        lk.unlock();
        not_full.signal();
        return it;
    }
    void close() {
        {
            std::lock_guard lk(m);
            closed = true;
        }
        not_empty.broadcast();
        not_full.broadcast();
    }
};

struct round_state {
    const config cfg;
    const std::uint64_t round;
    const std::uint64_t rseed;

    // Contexts: root -> vroot (value) -> prod_ctx, semgrp, errgroup's.
    goro::context root, vroot, prod_ctx, semgrp;
    goro::cancel_func root_cancel, prod_cancel, semgrp_cancel;
    std::vector<goro::after_func_stop> caf_stops;
    std::unique_ptr<std::atomic<int>[]> caf_ran, caf_stopped;
    goro::wait_group wg_caf;

    // Channels.
    goro::chan<item> src, mid, thr_in;
    std::vector<goro::chan<item>> lanes;
    goro::chan<goro::unit> quit, src_closed, fan_done, holder_stop;
    bool quit_closed = false;  // by the body (known bug 4) or after run()
    goro::chan<std::uint64_t> progress;

    goro::wait_group wg_prod, wg_cq, wg_af, wg_merge, wg_sink, wg_misc;
    cond_queue cq;

    goro::errgroup eg;
    goro::context gctx;
    std::atomic<int> eg_failures{0}, eg_tasks{0};

    // after_func deliveries: items wait here until their function takes them
    // (wg_af counts the functions that took one and are still sending it).
    struct af_slot {
        item it;
        std::int64_t due_ns = 0;          // when its timer is due
        std::int64_t stop_false_ns = -1;  // when stop() returned false, else -1
    };
    goro::mutex slots_mu;
    std::unordered_map<std::uint64_t, af_slot> slots;  // guarded by slots_mu
    std::uint64_t next_slot = 0;                       // guarded by slots_mu

    // Shared counters.
    goro::mutex stats_mu;
    bool stats_inside = false;          // guarded by stats_mu
    std::uint64_t locked_consumed = 0;  // guarded by stats_mu
    std::uint64_t sinks_exited = 0;     // guarded by stats_mu
    goro::rw_mutex pair_rw;
    std::uint64_t pair_a = 0, pair_b = 0;  // guarded by pair_rw; always equal outside it
    goro::semaphore sem;
    std::atomic<std::int64_t> sem_in_use{0};
    goro::once once_cfg;
    std::atomic<int> once_runs{0}, once_attempts{0};
    int once_value = 0;  // written by the once, read after call()

    // Blocking destructors.
    std::atomic<int> joiners_made{0}, joiners_done{0}, exit_guards_made{0}, exit_guards_done{0};

    // Plain threads. Each sets its flag as its very last act: goroutines
    // poll it (a channel closed by the thread would wake them from inside a
    // goro call still running on the thread: known bug 4).
    std::atomic<bool> spawner_stop{false};
    std::atomic<bool> t1_finished{false}, t4_finished{false}, relay_finished{false},
        t3_finished{false};
    std::vector<std::thread> threads;

    // Statistics.
    std::atomic<std::uint64_t> af_fired{0}, af_stopped{0}, af_reset{0}, sem_gave_up{0},
        sink_cancelled{0}, reports{0}, idle_fired{0}, timeouts{0};
    std::atomic<int> closer_stage{0};  // for hang reports

    // What a hang report shows besides the goroutine dump.
    std::string progress_report() const {
        char b[512];
        std::snprintf(b, sizeof b,
                      "closer stage %d; wait_group counts: prod %" PRId64 " cq %" PRId64
                      " af %" PRId64 " merge %" PRId64 " sink %" PRId64 " misc %" PRId64
                      " caf %" PRId64 "; errgroup tasks %d (failed %d); after_func fired %" PRIu64
                      " stopped %" PRIu64 " reset %" PRIu64,
                      closer_stage.load(), wg_prod.count(), wg_cq.count(), wg_af.count(),
                      wg_merge.count(), wg_sink.count(), wg_misc.count(), wg_caf.count(),
                      eg_tasks.load(), eg_failures.load(), af_fired.load(), af_stopped.load(),
                      af_reset.load());
        return b;
    }

    round_state(const config& c, std::uint64_t r, std::uint64_t seed)
        : cfg(c), round(r), rseed(seed), sem(c.sem_size) {}
};

void check_value(const goro::context& ctx, const round_state& st, const char* who) {
    const std::uint64_t* v = ctx.value(round_key);
    SOAK_CHECK(v && *v == st.round, "%s: context value %s (round %" PRIu64 ")", who,
               v ? std::to_string(*v).c_str() : "missing", st.round);
}

// Mutual exclusion witness for stats_mu.
struct critical {
    bool& inside;
    explicit critical(bool& f) : inside(f) {
        SOAK_CHECK(!inside, "goro::mutex: two holders inside one critical section");
        inside = true;
    }
    ~critical() { inside = false; }
    critical(const critical&) = delete;
    critical& operator=(const critical&) = delete;
};

// Permits held; given back when the holder finishes or unwinds.
struct sem_hold {
    round_state& st;
    std::int64_t n;
    sem_hold(round_state& s, std::int64_t w) : st(s), n(w) {
        const std::int64_t now = st.sem_in_use.fetch_add(n) + n;
        SOAK_CHECK(now <= st.sem.size(), "semaphore: %" PRId64 " permits in use, size %" PRId64,
                   now, st.sem.size());
    }
    ~sem_hold() {
        st.sem_in_use.fetch_sub(n);
        st.sem.release(n);
    }
    sem_hold(const sem_hold&) = delete;
    sem_hold& operator=(const sem_hold&) = delete;
};

void check_pair(round_state& st, rng& r, const char* who) {
    std::shared_lock lk(st.pair_rw);
    SOAK_CHECK(st.pair_a == st.pair_b, "%s: rw_mutex reader saw a torn pair %" PRIu64 "/%" PRIu64,
               who, st.pair_a, st.pair_b);
    if (r.chance(1, 4)) goro::yield();  // hold it across a park
    SOAK_CHECK(st.pair_a == st.pair_b,
               "%s: rw_mutex pair changed under a read lock %" PRIu64 "/%" PRIu64, who, st.pair_a,
               st.pair_b);
}

void bump_pair(round_state& st, rng& r) {
    std::lock_guard lk(st.pair_rw);
    struct second_half {
        round_state& st;
        ~second_half() { ++st.pair_b; }  // also when unwound mid-way
    } half{st};
    ++st.pair_a;
    if (r.chance(1, 8)) goro::yield();
}

// Consumes items under stats_mu (every consumption goes through here).
void consume_locked(round_state& st, std::vector<item>& batch, rng& r, const char* where) {
    std::lock_guard lk(st.stats_mu);
    critical c(st.stats_inside);
    for (auto& x : batch) {
        item::consume(std::move(x), where);
        ++st.locked_consumed;
        if (r.chance(1, 64)) goro::yield();  // park holding the mutex
    }
    batch.clear();
}

// -------------------------------------------------------------- producers

// Sends items [lo, hi) on src until ctx is done.
void produce_range(round_state& st, std::uint64_t lo, std::uint64_t hi, goro::context ctx, rng r) {
    check_value(ctx, st, "producer");
    for (std::uint64_t k = lo; k < hi; ++k) {
        item it = item::produce(k);
        if (r.chance(1, 3) && st.src.try_send(std::move(it))) continue;
        bool sent = false;
        goro::select(goro::send_case(st.src, std::move(it), [&] { sent = true; }),
                     goro::recv_case(ctx.done()));
        if (!sent) {
            SOAK_CHECK(ctx.err(), "producer: select left without a send or a done context");
            item::drop(std::move(it), "producer cancelled holding it");
            mark_unsent(k + 1, hi);
            return;
        }
        if (r.chance(1, 16)) goro::yield();
    }
}

// Sends items already produced (by a plain thread) until ctx is done.
void send_all(round_state& st, std::vector<item>& items, const goro::context& ctx) {
    for (auto& it : items) {
        if (ctx.err()) {
            item::drop(std::move(it), "spawned producer cancelled");
            continue;
        }
        bool sent = false;
        goro::select(goro::send_case(st.src, std::move(it), [&] { sent = true; }),
                     goro::recv_case(ctx.done()));
        if (!sent) item::drop(std::move(it), "spawned producer cancelled holding it");
    }
}

// Plain thread: spawns producer goroutines for [lo, hi) until told to stop.
void spawner_thread(round_state& st, std::uint64_t lo, std::uint64_t hi, rng r) {
    std::uint64_t k = lo;
    while (k < hi && !st.spawner_stop.load()) {
        const std::uint64_t n = std::min<std::uint64_t>(hi - k, r.range(1, 8));
        std::vector<item> items;
        for (std::uint64_t i = 0; i < n; ++i) items.push_back(item::produce(k++));
        auto fn = witnessed([&st, items = std::move(items), ctx = st.prod_ctx]() mutable {
            send_all(st, items, ctx);
        });
        if (r.chance(1, 2))
            st.wg_prod.go(std::move(fn));
        else {
            st.wg_prod.add(1);
            goro::go([&st, fn = std::move(fn)]() mutable {
                struct done {
                    goro::wait_group& wg;
                    ~done() { wg.done(); }
                } d{st.wg_prod};
                fn();
            });
        }
        if (r.chance(1, 4)) std::this_thread::sleep_for(us(r.range(10, 300)));
    }
    mark_unsent(k, hi);  // what it never produced (stopped early)
    st.t1_finished.store(true);
}

// Plain thread: sends [lo, hi) on src itself.
void producer_thread(round_state& st, std::uint64_t lo, std::uint64_t hi, rng r) {
    for (std::uint64_t k = lo; k < hi; ++k) {
        item it = item::produce(k);
        int which = -1;
        goro::select(goro::send_case(st.src, std::move(it), [&] { which = 0; }),
                     goro::recv_case(st.prod_ctx.done(), [&] { which = 1; }),
                     goro::recv_case(st.quit, [&] { which = 2; }));
        if (which != 0) {
            item::drop(std::move(it), which == 1 ? "producer thread cancelled"
                                                 : "producer thread stopped after run()");
            mark_unsent(k + 1, hi);
            break;
        }
        if (r.chance(1, 32)) std::this_thread::yield();
    }
    st.t4_finished.store(true);
}

// ----------------------------------------------------------------- fan-out

int pick_lane(round_state& st, rng& r) {
    return static_cast<int>(r.below(st.lanes.size()));
}

// Route 0: select over two lanes with a default case, then with an after()
// timeout; both send cases name the same item, only the chosen one moves it.
void send_to_lanes(round_state& st, item&& it, rng& r) {
    goro::chan<item>& a = st.lanes[static_cast<std::size_t>(pick_lane(st, r))];
    goro::chan<item>& b = st.lanes[static_cast<std::size_t>(pick_lane(st, r))];
    std::size_t i = goro::select(goro::send_case(a, std::move(it)),
                                 goro::send_case(b, std::move(it)), goro::default_case());
    if (i < 2) {
        SOAK_CHECK(!it, "select: a chosen send case left its value behind");
        return;
    }
    SOAK_CHECK(bool(it), "select: default case chosen but the value was moved");
    for (int tries = 0; tries < 3; ++tries) {
        bool timed_out = false;
        i = goro::select(
            goro::send_case(a, std::move(it)), goro::send_case(b, std::move(it)),
            goro::recv_case(goro::after(us(r.range(50, 1500))), [&] { timed_out = true; }));
        if (!timed_out) {
            SOAK_CHECK(!it, "select: a chosen send case left its value behind");
            return;
        }
        SOAK_CHECK(bool(it), "select: the timeout case chosen but the value was moved");
        st.timeouts.fetch_add(1, std::memory_order_relaxed);
    }
    a.send(std::move(it));
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               goro::clock::now().time_since_epoch())
        .count();
}

// Takes an after_func's item out of its slot (it must be there). With
// `sending`, counts the caller in wg_af under the same lock, so whoever sees
// the table empty also sees every sender counted.
item take_slot(round_state& st, std::uint64_t key, const char* who, bool sending) {
    std::lock_guard lk(st.slots_mu);
    auto found = st.slots.find(key);
    SOAK_CHECK(found != st.slots.end(),
               "%s: after_func item %" PRIu64
               " is gone (the function ran after stop() returned true, or twice)",
               who, key);
    item it = std::move(found->second.it);
    st.slots.erase(found);
    if (sending) st.wg_af.add(1);
    return it;
}

struct pending_af {
    goro::timer t;
    std::uint64_t key;
};

// Route 3: deliver the item later from an after_func.
void deliver_later(round_state& st, item&& it, rng& r, std::vector<pending_af>& pending) {
    const std::int64_t delay = r.range(50, 3000);
    std::uint64_t key;
    {
        std::lock_guard lk(st.slots_mu);
        key = st.next_slot++;
        round_state::af_slot& slot = st.slots[key];
        slot.it = std::move(it);
        slot.due_ns = now_ns() + delay * 1000;
    }
    const int lane = pick_lane(st, r);
    goro::timer t = goro::after_func(
        us(delay), witnessed(
                       [&st, key, lane] {
                           item x = take_slot(st, key, "after_func", true);
                           struct done {
                               goro::wait_group& wg;
                               ~done() { wg.done(); }
                           } d{st.wg_af};
                           st.af_fired.fetch_add(1, std::memory_order_relaxed);
                           st.lanes[static_cast<std::size_t>(lane)].send(std::move(x));
                       },
                       k_after_func));
    pending.push_back({t, key});
}

// Stops (and maybe re-arms) a pending after_func.
void poke_pending(round_state& st, rng& r, std::vector<pending_af>& pending) {
    const std::size_t i = r.below(pending.size());
    pending_af p = pending[i];
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
    if (!p.t.stop()) {
        // Fired: its function has started (Go's contract) and takes the item.
        // Noted, so that the closer can tell known bug 2 from a lost timer.
        std::lock_guard lk(st.slots_mu);
        auto found = st.slots.find(p.key);
        if (found != st.slots.end()) found->second.stop_false_ns = now_ns();
        return;
    }
    if (r.chance(1, 2)) {
        // Stopped, then re-armed: it runs once, later.
        const std::int64_t delay = r.range(50, 2000);
        {
            std::lock_guard lk(st.slots_mu);
            auto found = st.slots.find(p.key);
            SOAK_CHECK(found != st.slots.end(),
                       "after_func item %" PRIu64 " taken although stop() returned true", p.key);
            found->second.due_ns = now_ns() + delay * 1000;
        }
        const bool was_active = p.t.reset(us(delay));
        SOAK_CHECK(!was_active, "timer: reset() after a successful stop() says it was active");
        st.af_reset.fetch_add(1, std::memory_order_relaxed);
        pending.push_back(p);
        return;
    }
    st.af_stopped.fetch_add(1, std::memory_order_relaxed);
    item it = take_slot(st, p.key, "after_func stopped", false);
    send_to_lanes(st, std::move(it), r);
}

// Route 2: an errgroup task consumes the item itself; some tasks fail.
void run_in_errgroup(round_state& st, item&& it, rng& r) {
    const int fail_kind =
        r.below(1000) < st.cfg.eg_fail_per_mille ? static_cast<int>(r.range(1, 2)) : 0;
    const std::int64_t delay = r.chance(1, 4) ? r.range(0, 500) : 0;
    std::vector<item> one;
    one.push_back(std::move(it));
    auto task = witnessed(
        [&st, one = std::move(one), fail_kind, delay, tr = r.fork(7)]() mutable -> std::error_code {
            st.eg_tasks.fetch_add(1, std::memory_order_relaxed);
            check_value(st.gctx, st, "errgroup task");
            if (delay) goro::sleep_for(us(delay));
            if (st.gctx.err()) {
                item::drop(std::move(one[0]), "errgroup task after the group failed");
            } else {
                st.sem.acquire(1);
                sem_hold h(st, 1);
                consume_locked(st, one, tr, "errgroup task");
            }
            if (fail_kind == 1) {
                st.eg_failures.fetch_add(1);
                return std::make_error_code(std::errc::io_error);
            }
            if (fail_kind == 2) {
                st.eg_failures.fetch_add(1);
                throw std::runtime_error("soak: errgroup task failed on purpose");
            }
            return {};
        },
        k_errgroup);
    if (r.chance(1, 2) && st.eg.try_go(std::move(task))) return;
    st.eg.go(std::move(task));  // parks while the limit is reached
}

void fan_out(round_state& st, rng r) {
    std::vector<pending_af> pending;
    std::uint64_t total_w = 0;
    for (auto w : st.cfg.route_w) total_w += w;
    for (;;) {
        std::optional<item> v = st.src.recv();
        if (!v) break;
        item it = std::move(*v);
        if (r.chance(1, 32)) check_pair(st, r, "fan-out");
        std::uint64_t x = r.below(total_w);
        int route = 0;
        while (x >= st.cfg.route_w[route]) x -= st.cfg.route_w[route++];
        switch (route) {
            case 0:
                send_to_lanes(st, std::move(it), r);
                break;
            case 1:
                if (!st.cq.push(it, r.chance(1, 2))) send_to_lanes(st, std::move(it), r);
                break;
            case 2:
                run_in_errgroup(st, std::move(it), r);
                break;
            case 3:
                deliver_later(st, std::move(it), r, pending);
                break;
            default:
                st.thr_in.send(std::move(it));
                break;
        }
        if (!pending.empty() && r.chance(1, 3)) poke_pending(st, r, pending);
    }
    while (!pending.empty() && r.chance(1, 2)) poke_pending(st, r, pending);
}

// Starts the fan-out workers and joins them with an RAII joiner: its
// destructor waits on a wait_group, also while this goroutine unwinds.
void supervise(round_state& st, rng r) {
    struct joiner {
        round_state& st;
        goro::wait_group wg;
        explicit joiner(round_state& s) : st(s) { st.joiners_made.fetch_add(1); }
        ~joiner() {
            wg.wait();
            st.joiners_done.fetch_add(1);
        }
        joiner(const joiner&) = delete;
        joiner& operator=(const joiner&) = delete;
    } j(st);
    for (int i = 0; i < st.cfg.n_fan; ++i)
        j.wg.go(witnessed([&st, fr = r.fork(static_cast<std::uint64_t>(i))] { fan_out(st, fr); }));
    st.src_closed.recv();  // parked here at a shutdown: ~joiner runs while unwinding
    // On the normal path the wait happens here, outside the destructor (see
    // known bug 1 at g_expose_known_bugs): ~joiner then blocks only while
    // unwinding.
    if (!g_expose_known_bugs) j.wg.wait();
}

// ------------------------------------------------------------- downstream

void cq_worker(round_state& st, rng r) {
    while (std::optional<item> it = st.cq.pop()) {
        if (r.chance(1, 2))
            st.lanes[static_cast<std::size_t>(pick_lane(st, r))].send(std::move(*it));
        else
            send_to_lanes(st, std::move(*it), r);
    }
}

// Plain thread: forwards thr_in to the lanes.
void relay_thread(round_state& st, rng r) {
    for (;;) {
        std::optional<item> got;
        bool closed = false, stop = false;
        goro::select(goro::recv_case(st.thr_in,
                                     [&](std::optional<item> v) {
                                         if (v)
                                             got = std::move(v);
                                         else
                                             closed = true;
                                     }),
                     goro::recv_case(st.quit, [&] { stop = true; }));
        if (got) {
            bool sent = false;
            goro::select(goro::send_case(st.lanes[static_cast<std::size_t>(pick_lane(st, r))],
                                         std::move(*got), [&] { sent = true; }),
                         goro::recv_case(st.quit, [&] { stop = true; }));
            if (!sent) item::drop(std::move(*got), "relay thread stopped after run()");
        }
        if (closed || stop) break;
    }
    st.relay_finished.store(true);
}

// Fan-in: a dynamic select over every open lane (receive, while it holds
// fewer than merge_hold items) and a send of the oldest held item to mid.
void merger(round_state& st, rng r) {
    std::vector<goro::chan<item>> open = st.lanes;
    std::deque<item> held;
    std::vector<goro::select_case<item>> cases;
    while (!open.empty() || !held.empty()) {
        cases.clear();
        const bool take_more = held.size() < st.cfg.merge_hold;
        if (take_more)
            for (auto& l : open) cases.push_back(goro::select_case<item>::recv(l));
        const std::size_t send_at = held.empty() ? SIZE_MAX : cases.size();
        if (!held.empty()) {
            cases.push_back(goro::select_case<item>::send(st.mid, std::move(held.front())));
            held.pop_front();
        }
        std::optional<std::size_t> chosen;
        if (r.chance(1, 4)) chosen = goro::try_select(cases);
        if (!chosen) chosen = goro::select(std::span<goro::select_case<item>>(cases));
        const std::size_t i = *chosen;
        SOAK_CHECK(i < cases.size(), "select(span): index %zu of %zu cases", i, cases.size());
        if (send_at != SIZE_MAX) {
            std::optional<item>& pending = cases[send_at].value();
            if (i == send_at) {
                SOAK_CHECK(!pending, "select(span): a sent value is still in its case");
            } else {
                SOAK_CHECK(pending.has_value() && bool(*pending),
                           "select(span): an unchosen send case lost its value");
                held.push_front(std::move(*pending));
                pending.reset();
            }
        }
        if (i != send_at) {
            std::optional<item>& v = cases[i].value();
            if (v) {
                held.push_back(std::move(*v));
                v.reset();
            } else {
                open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));  // closed lane
            }
        }
    }
}

// Once with a first attempt that may fail (and is retried).
void init_once(round_state& st, rng& r) {
    const bool fail_first = r.chance(1, 2);
    for (int attempt = 0;; ++attempt) {
        try {
            st.once_cfg.call([&] {
                const int n = st.once_attempts.fetch_add(1) + 1;
                goro::sleep_for(us(200));  // the others park in call()
                if (fail_first && n == 1) throw std::runtime_error("soak: once fails once");
                st.once_value = 42;
                st.once_runs.fetch_add(1);
            });
            break;
        } catch (const std::runtime_error&) {
            SOAK_CHECK(attempt < 100, "once: keeps failing");
        }
    }
    SOAK_CHECK(st.once_value == 42, "once: call() returned before the value was set (%d)",
               st.once_value);
}

// Flushes a sink's batch: a weighted semaphore (maybe with a context that
// times out, or whose ancestor is cancelled), then the mutex, then the pair.
void flush(round_state& st, std::vector<item>& batch, rng& r, bool with_ctx) {
    if (batch.empty()) return;
    const std::int64_t w = r.range(1, st.sem.size());
    if (with_ctx) {
        std::pair<goro::context, goro::cancel_func> a =
            goro::with_timeout(st.semgrp, us(r.range(20, 4000)));
        const std::error_code ec = st.sem.acquire(a.first, w);
        const std::error_code err = a.first.err();
        a.second();
        if (ec) {
            SOAK_CHECK(ec == goro::errc::canceled || ec == goro::errc::deadline_exceeded,
                       "semaphore: acquire(ctx) failed with %s", ec.message().c_str());
            SOAK_CHECK(err == ec, "semaphore: acquire(ctx) returned %s but ctx.err() is %s",
                       ec.message().c_str(), err.message().c_str());
            st.sem_gave_up.fetch_add(1, std::memory_order_relaxed);
            for (auto& x : batch) item::drop(std::move(x), "sink's semaphore acquire gave up");
            batch.clear();
            return;
        }
    } else {
        st.sem.acquire(w);
    }
    sem_hold h(st, w);
    consume_locked(st, batch, r, "sink");
    bump_pair(st, r);
}

void sink(round_state& st, int idx, goro::context sctx, rng r) {
    // Its destructor locks the contended stats_mu, also while unwinding.
    // On the normal path finish() does that outside the destructor (known
    // bug 1 at g_expose_known_bugs).
    struct exit_guard {
        round_state& st;
        bool finished = false;
        explicit exit_guard(round_state& s) : st(s) { st.exit_guards_made.fetch_add(1); }
        void finish() {
            std::lock_guard lk(st.stats_mu);
            ++st.sinks_exited;
            st.exit_guards_done.fetch_add(1);
            finished = true;
        }
        ~exit_guard() {
            if (!finished) finish();
        }
        exit_guard(const exit_guard&) = delete;
        exit_guard& operator=(const exit_guard&) = delete;
    } guard(st);
    check_value(sctx, st, "sink");
    init_once(st, r);
    const std::size_t max_batch = static_cast<std::size_t>(r.range(1, 16));
    const bool sem_ctx = r.chance(1, 2);
    std::vector<item> batch;
    goro::ticker tick(us(r.range(500, 4000)));
    goro::timer idle(10ms);
    std::uint64_t received = 0;
    for (;;) {
        goro::chan<std::uint64_t> report =
            r.chance(1, 8) ? st.progress : goro::chan<std::uint64_t>{};
        std::optional<item> got;
        bool closed = false, cancelled = false, flush_now = false;
        goro::select(
            goro::recv_case(st.mid,
                            [&](std::optional<item> v) {
                                if (v)
                                    got = std::move(v);
                                else
                                    closed = true;
                            }),
            goro::recv_case(goro::after(us(r.range(200, 3000))), [&] { flush_now = true; }),
            goro::recv_case(tick.c(), [&] { flush_now = true; }),
            goro::recv_case(idle.c(),
                            [&] {
                                st.idle_fired.fetch_add(1, std::memory_order_relaxed);
                                idle.reset(10ms);
                            }),
            goro::recv_case(sctx.done(), [&] { cancelled = true; }),
            goro::send_case(report, received,
                            [&] { st.reports.fetch_add(1, std::memory_order_relaxed); }));
        if (got) {
            SOAK_CHECK(bool(*got), "sink: received an empty item");
            batch.push_back(std::move(*got));
            ++received;
            if (received % 16 == 0) {
                // Go 1.23 timers: after reset() nothing sent before it is received.
                idle.reset(1h);
                SOAK_CHECK(!idle.c().try_recv().has_value(),
                           "timer: a value was received after reset()");
                idle.reset(10ms);
            }
            if (received % 64 == 0) tick.reset(us(r.range(500, 4000)));
            if (batch.size() >= max_batch) flush(st, batch, r, sem_ctx);
        }
        if (flush_now) flush(st, batch, r, sem_ctx);
        if (closed) {
            flush(st, batch, r, sem_ctx);
            break;
        }
        if (cancelled) {
            // Cancelled mid-way: hand back what it holds.
            SOAK_CHECK(sctx.err(), "sink: done() closed but err() is empty");
            for (auto& x : batch) item::drop(std::move(x), "sink cancelled");
            batch.clear();
            st.sink_cancelled.fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
    idle.stop();
    SOAK_CHECK(!idle.c().try_recv().has_value(), "timer: a value was received after stop()");
    tick.stop();  // (its destructor would too)
    SOAK_CHECK(!tick.c().try_recv().has_value(), "ticker: a tick was received after stop()");
    (void)idx;
    if (!g_expose_known_bugs) guard.finish();
}

// Plain thread: takes items off mid and consumes them (blocking goro calls
// from a thread: semaphore, mutex, rw_mutex, select).
void sink_thread(round_state& st, rng r) {
    for (;;) {
        std::optional<item> got;
        bool closed = false, stop = false;
        goro::select(goro::recv_case(st.mid,
                                     [&](std::optional<item> v) {
                                         if (v)
                                             got = std::move(v);
                                         else
                                             closed = true;
                                     }),
                     goro::recv_case(st.quit, [&] { stop = true; }));
        if (got) {
            std::vector<item> one;
            one.push_back(std::move(*got));
            const std::int64_t w = r.range(1, st.sem.size());
            st.sem.acquire(w);
            sem_hold h(st, w);
            consume_locked(st, one, r, "sink thread");
        }
        if (r.chance(1, 16)) check_pair(st, r, "sink thread");
        if (closed || stop) break;
    }
    st.t3_finished.store(true);
}

// ------------------------------------------------------------------ misc

void holder(round_state& st, rng r) {
    for (;;) {
        bool stop = false;
        goro::select(goro::recv_case(st.holder_stop, [&] { stop = true; }),
                     goro::recv_case(goro::after(us(r.range(100, 800)))));
        if (stop) break;
        std::lock_guard lk(st.stats_mu);  // contention for the sinks' exit guards
        critical c(st.stats_inside);
        goro::sleep_for(us(r.range(0, 300)));
    }
}

void monitor(round_state& st, rng r) {
    for (;;) {
        bool closed = false;
        goro::select(goro::recv_case(st.progress,
                                     [&](std::optional<std::uint64_t> v) {
                                         if (!v) closed = true;
                                     }),
                     goro::recv_case(goro::after(1ms)));
        check_pair(st, r, "monitor");
        if (closed) break;
    }
}

void canceller(round_state& st, rng r) {
    if (st.cfg.cancel_prod)
        goro::sleep_for(us(st.cfg.cancel_prod_after_us));
    else
        goro::sleep_for(us(r.range(0, 2000)));
    for (int i = 0; i < st.cfg.n_caf; ++i) {
        if (!r.chance(1, 3)) continue;
        if (st.caf_stops[static_cast<std::size_t>(i)]()) {
            SOAK_CHECK(st.caf_stopped[i].fetch_add(1) == 0, "context_after_func stopped twice");
            st.wg_caf.done();
        }
    }
    if (st.cfg.cancel_prod) st.prod_cancel();
}

// Waits (normal rounds, after the fan-out) until every after_func item has
// been taken by its function. An item whose timer is long past due fails the
// round; one whose stop() returned false without its function ever running
// is known bug 2 (dropped and counted, or a failure with --expose-known-bugs).
void wait_for_after_funcs(round_state& st) {
    // A function that did fire takes its item within microseconds; a timer
    // runs late by milliseconds at worst, even under TSan on 2 busy cores.
    const std::int64_t stop_grace_ns = (tsan_build || asan_build) ? 500'000'000 : 250'000'000;
    const std::int64_t due_grace_ns = (tsan_build || asan_build) ? 10'000'000'000 : 5'000'000'000;
    for (;;) {
        std::vector<item> stranded;
        {
            std::lock_guard lk(st.slots_mu);
            if (st.slots.empty()) return;
            const std::int64_t now = now_ns();
            for (auto it = st.slots.begin(); it != st.slots.end();) {
                round_state::af_slot& slot = it->second;
                if (slot.stop_false_ns >= 0 && now - slot.stop_false_ns > stop_grace_ns) {
                    SOAK_CHECK(!g_expose_known_bugs,
                               "KNOWN BUG 2: after_func %" PRIu64
                               ": stop() returned false %.1f s ago, its function never ran",
                               it->first, static_cast<double>(now - slot.stop_false_ns) / 1e9);
                    stranded.push_back(std::move(slot.it));
                    it = st.slots.erase(it);
                    continue;
                }
                SOAK_CHECK(slot.stop_false_ns >= 0 || now - slot.due_ns <= due_grace_ns,
                           "after_func %" PRIu64 " is %.1f s past due and has not run", it->first,
                           static_cast<double>(now - slot.due_ns) / 1e9);
                ++it;
            }
        }
        for (auto& x : stranded) {
            g_stranded_after_funcs.fetch_add(1);
            item::drop(std::move(x), "after_func stranded by known bug 2");
        }
        goro::sleep_for(1ms);
    }
}

// Waits for a plain thread's last act (known bug 4: not a channel close).
void await_flag(const std::atomic<bool>& flag) {
    while (!flag.load(std::memory_order_acquire)) goro::sleep_for(50us);
}

// Closes each stage once everything feeding it is done (normal rounds).
void closer(round_state& st) {
    if (st.cfg.t_spawner) await_flag(st.t1_finished);
    st.closer_stage = 1;
    if (st.cfg.t_producer) await_flag(st.t4_finished);
    st.closer_stage = 2;
    st.wg_prod.wait();
    st.src.close();
    st.src_closed.close();
    st.closer_stage = 3;
    st.fan_done.recv();
    st.cq.close();
    if (st.cfg.t_relay) st.thr_in.close();
    st.closer_stage = 4;
    st.wg_cq.wait();
    st.closer_stage = 5;
    wait_for_after_funcs(st);
    st.wg_af.wait();
    st.closer_stage = 6;
    if (st.cfg.t_relay) await_flag(st.relay_finished);
    for (auto& l : st.lanes) l.close();
    st.closer_stage = 7;

    bool threw = false;
    try {
        st.eg.wait();
    } catch (const std::system_error& e) {
        threw = true;
        SOAK_CHECK(e.code() == std::errc::io_error, "errgroup: wait() threw code %s",
                   e.code().message().c_str());
    } catch (const std::runtime_error& e) {
        threw = true;
        SOAK_CHECK(std::strcmp(e.what(), "soak: errgroup task failed on purpose") == 0,
                   "errgroup: wait() threw '%s'", e.what());
    }
    const int failures = st.eg_failures.load();
    SOAK_CHECK(threw == (failures > 0), "errgroup: %d failures but wait() %s", failures,
               threw ? "threw" : "did not throw");
    SOAK_CHECK(st.gctx.err(), "errgroup: context not cancelled after wait()");
    SOAK_CHECK(bool(goro::cause(st.gctx)), "errgroup: no cause after wait()");

    st.closer_stage = 8;
    st.wg_merge.wait();
    st.mid.close();
    st.closer_stage = 9;
}

// ------------------------------------------------------------------ round

struct round_result {
    std::uint64_t produced = 0, consumed = 0, dropped = 0, unwound = 0, unsent = 0, never = 0;
    std::uint64_t goroutines = 0;
};

void body(round_state& st, ledger& L) {
    const config& c = st.cfg;
    rng r(st.rseed ^ 0xb0d1);

    // Context tree.
    {
        auto a = goro::with_cancel(goro::background());
        st.root = a.first;
        st.root_cancel = a.second;
        st.vroot = goro::with_value(st.root, round_key, st.round);
        auto p = goro::with_cancel(st.vroot);
        st.prod_ctx = p.first;
        st.prod_cancel = p.second;
        auto s = goro::with_cancel_cause(st.vroot);
        st.semgrp = s.first;
        st.semgrp_cancel = s.second;
        auto g = goro::errgroup::with_context(st.vroot);
        st.eg = g.first;
        st.gctx = g.second;
        st.eg.set_limit(c.eg_limit);
    }
    st.caf_ran.reset(new std::atomic<int>[static_cast<std::size_t>(c.n_caf)]());
    st.caf_stopped.reset(new std::atomic<int>[static_cast<std::size_t>(c.n_caf)]());
    st.wg_caf.add(c.n_caf);
    for (int i = 0; i < c.n_caf; ++i) {
        const bool cancels = c.caf_cancels_semgrp && i == 0;
        st.caf_stops.push_back(goro::context_after_func(
            st.prod_ctx, witnessed(
                             [&st, i, cancels] {
                                 struct done {
                                     goro::wait_group& wg;
                                     ~done() { wg.done(); }
                                 } d{st.wg_caf};
                                 SOAK_CHECK(st.caf_ran[i].fetch_add(1) == 0,
                                            "context_after_func %d ran twice", i);
                                 SOAK_CHECK(st.prod_ctx.err(),
                                            "context_after_func ran before its context was done");
                                 if (cancels)
                                     st.semgrp_cancel(
                                         std::make_error_code(std::errc::operation_canceled));
                             },
                             k_context_after_func)));
    }

    // Channels.
    st.src = goro::make_chan<item>(c.src_cap);
    for (auto cap : c.lane_caps) st.lanes.push_back(goro::make_chan<item>(cap));
    st.mid = goro::make_chan<item>(c.mid_cap);
    st.thr_in = goro::make_chan<item>(r.chance(1, 2) ? 0 : 4);
    st.progress = goro::make_chan<std::uint64_t>(1);
    for (auto* ch : {&st.quit, &st.src_closed, &st.fan_done, &st.holder_stop})
        *ch = goro::make_chan<goro::unit>();
    st.cq.cap = c.cq_cap;

    // Downstream first, then upstream.
    for (int i = 0; i < c.n_sinks; ++i) {
        goro::context sctx;
        if (i < c.n_cancellable_sinks) {
            auto t = goro::with_timeout(st.vroot, us(r.range(500, 30000)));
            sctx = t.first;
        } else {
            sctx = goro::without_cancel(st.vroot);
        }
        st.wg_sink.go(witnessed([&st, i, sctx, sr = r.fork(100 + static_cast<std::uint64_t>(i))] {
            sink(st, i, sctx, sr);
        }));
    }
    if (c.t_sink) st.threads.emplace_back([&st, tr = r.fork(200)] { sink_thread(st, tr); });
    for (int i = 0; i < c.n_merge; ++i)
        st.wg_merge.go(
            witnessed([&st, mr = r.fork(300 + static_cast<std::uint64_t>(i))] { merger(st, mr); }));
    for (int i = 0; i < c.n_cq; ++i)
        st.wg_cq.go(witnessed(
            [&st, qr = r.fork(400 + static_cast<std::uint64_t>(i))] { cq_worker(st, qr); }));
    if (c.t_relay) st.threads.emplace_back([&st, tr = r.fork(500)] { relay_thread(st, tr); });
    st.wg_misc.go(witnessed([&st, sr = r.fork(600)] {
        supervise(st, sr);
        st.fan_done.close();
    }));
    st.wg_misc.go(witnessed([&st, hr = r.fork(700)] { holder(st, hr); }));
    st.wg_misc.go(witnessed([&st, mr = r.fork(800)] { monitor(st, mr); }));
    st.wg_misc.add(1);  // before the spawn: the canceller may finish at once
    goro::go(witnessed([&st, cr = r.fork(900)] {
        struct done {
            goro::wait_group& wg;
            ~done() { wg.done(); }
        } d{st.wg_misc};
        canceller(st, cr);
    }));

    // Producers: ranges [spawner][producer thread][goroutines...].
    std::uint64_t next = 0;
    if (c.t_spawner) {
        const std::uint64_t lo = next, hi = next + c.spawner_items;
        next = hi;
        st.threads.emplace_back(
            [&st, lo, hi, tr = r.fork(1000)] { spawner_thread(st, lo, hi, tr); });
    }
    if (c.t_producer) {
        const std::uint64_t lo = next, hi = next + c.producer_items;
        next = hi;
        st.threads.emplace_back(
            [&st, lo, hi, tr = r.fork(1100)] { producer_thread(st, lo, hi, tr); });
    }
    const std::uint64_t rest = c.n_items - next;
    for (int i = 0; i < c.n_prod; ++i) {
        const std::uint64_t lo =
            next + rest * static_cast<std::uint64_t>(i) / static_cast<std::uint64_t>(c.n_prod);
        const std::uint64_t hi =
            next + rest * static_cast<std::uint64_t>(i + 1) / static_cast<std::uint64_t>(c.n_prod);
        // Each producer's own context: a child that may time out early.
        std::pair<goro::context, goro::cancel_func> pc =
            r.below(8) < c.prod_timeout_chance
                ? goro::with_timeout(st.prod_ctx, us(r.range(100, 10000)))
                : goro::with_cancel(st.prod_ctx);
        goro::context pctx = pc.first;
        goro::cancel_func pcancel = pc.second;
        rng pr = r.fork(1200 + static_cast<std::uint64_t>(i));
        auto fn = witnessed([&st, lo, hi, pctx, pcancel, pr] {
            produce_range(st, lo, hi, pctx, pr);
            pcancel();
        });
        if (i % 2)
            st.wg_prod.go(std::move(fn));
        else {
            st.wg_prod.add(1);
            goro::go([&st, fn = std::move(fn)]() mutable {
                struct done {
                    goro::wait_group& wg;
                    ~done() { wg.done(); }
                } d{st.wg_prod};
                fn();
            });
        }
    }

    // Only now: the closer's wg_prod.wait() must see every producer counted.
    st.wg_misc.go(witnessed([&st] { closer(st); }));

    if (c.shutdown) {
        // Return while everything is in flight.
        if (c.shutdown_mode == 1) {
            goro::sleep_for(us(c.shutdown_delay_us));
        } else if (c.shutdown_mode == 2) {
            const auto give_up = goro::clock::now() + 50ms;
            while (L.consumed.load() < c.shutdown_after_items && goro::clock::now() < give_up)
                goro::sleep_for(100us);
        }
        // The spawner thread must not spawn into a runtime that is going away.
        st.spawner_stop.store(true);
        if (c.t_spawner) await_flag(st.t1_finished);
        if (!g_expose_known_bugs) {
            // Known bug 4: no plain thread may be inside a goro call that
            // wakes a goroutine while the runtime goes away. Stop them (they
            // hand back what they hold) before returning.
            st.quit.close();
            st.quit_closed = true;
            if (c.t_producer) await_flag(st.t4_finished);
            if (c.t_relay) await_flag(st.relay_finished);
            if (c.t_sink) await_flag(st.t3_finished);
        }
        L.unwinding_allowed.store(true);
        return;
    }

    // Normal round: wait for everything, then check the shared state.
    st.wg_sink.wait();
    if (c.t_sink) await_flag(st.t3_finished);
    st.holder_stop.close();
    st.progress.close();
    st.wg_misc.wait();
    st.root_cancel();
    st.wg_caf.wait();

    for (int i = 0; i < c.n_caf; ++i)
        SOAK_CHECK(st.caf_ran[i].load() + st.caf_stopped[i].load() == 1,
                   "context_after_func %d: ran %d, stopped %d (want exactly one)", i,
                   st.caf_ran[i].load(), st.caf_stopped[i].load());
    {
        std::lock_guard lk(st.stats_mu);
        SOAK_CHECK(st.locked_consumed == L.consumed.load(),
                   "mutex-protected count %" PRIu64 " != items consumed %" PRIu64,
                   st.locked_consumed, L.consumed.load());
        SOAK_CHECK(st.sinks_exited == static_cast<std::uint64_t>(c.n_sinks),
                   "%" PRIu64 " sinks exited of %d", st.sinks_exited, c.n_sinks);
    }
    {
        std::lock_guard lk(st.pair_rw);
        SOAK_CHECK(st.pair_a == st.pair_b, "rw_mutex pair %" PRIu64 "/%" PRIu64, st.pair_a,
                   st.pair_b);
    }
    SOAK_CHECK(st.once_runs.load() == 1, "once ran %d times", st.once_runs.load());
    SOAK_CHECK(st.sem_in_use.load() == 0, "semaphore: %" PRId64 " permits still in use",
               st.sem_in_use.load());
    SOAK_CHECK(st.sem.try_acquire(st.sem.size()), "semaphore: not all permits were released");
    st.sem.release(st.sem.size());
    {
        std::lock_guard lk(st.cq.m);
        SOAK_CHECK(st.cq.q.empty(), "cond queue: %zu items left", st.cq.q.size());
    }
    {
        std::lock_guard lk(st.slots_mu);
        SOAK_CHECK(st.slots.empty(), "after_func: %zu items never delivered", st.slots.size());
    }
    SOAK_CHECK(st.src.size() == 0 && st.mid.size() == 0, "channels not drained");
}

// Goroutine records that outlive run() (the runtime is gone: each is a
// goroutine that was never run nor unwound). Every one must be runnable.
std::uint64_t stranded_records() {
    std::ostringstream os;
    goro::dump_goroutines(os);
    std::istringstream lines(os.str());
    std::uint64_t n = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("goroutine ", 0) != 0) continue;
        SOAK_CHECK(line.find("[runnable]") != std::string::npos, "a goroutine outlived run(): %s",
                   line.c_str());
        ++n;
    }
    return n;
}

// After the round's state is gone every goroutine closure must have been
// destroyed, except (known bug 3) one per goroutine stranded at the end of
// shutdown by a timer that started an after_func or a context_after_func.
void check_closures() {
    const std::uint64_t records = stranded_records();
    SOAK_CHECK(records >= g_stranded_goroutines, "stranded goroutine records went away");
    const std::uint64_t new_records = records - g_stranded_goroutines;
    auto outstanding = [](int k) { return g_closures_made[k].load() - g_closures_freed[k].load(); };
    const std::uint64_t timer_started =
        outstanding(k_after_func) + outstanding(k_context_after_func);
    const bool others_clean = outstanding(k_go) == 0 && outstanding(k_errgroup) == 0;
    SOAK_CHECK(others_clean && timer_started == records,
               "goroutine closures never destroyed: %s; goroutine records left after run(): "
               "%" PRIu64,
               closures_outstanding().c_str(), records);
    if (new_records > 0) {
        SOAK_CHECK(!g_expose_known_bugs,
                   "KNOWN BUG 3: %" PRIu64
                   " goroutine(s) started by a timer at the end of shutdown never ran nor "
                   "unwound (closures never destroyed: %s)",
                   new_records, closures_outstanding().c_str());
        g_stranded_goroutines = records;
    }
}

round_result run_round(std::uint64_t round, unsigned procs) {
    const std::uint64_t rseed = mix(g_seed ^ mix(round + 0x1234));
    rng r(rseed);
    const config cfg = make_config(r);
    {
        std::lock_guard lk(g_desc_mu);
        g_desc = cfg.describe();
    }
    g_round.store(round);

    ledger L(round, cfg.n_items);
    g_ledger.store(&L, std::memory_order_release);
    const std::uint64_t bodies0 = g_bodies_started.load();
    auto st = std::make_unique<round_state>(cfg, round, rseed);
    g_state.store(st.get());

    goro::options opts;
    opts.procs = procs;
    try {
        goro::run(opts, [&] {
            body_witness b;
            body(*st, L);
        });
    } catch (const std::exception& e) {
        fail("exception escaped goro::run: %s", e.what());
    }

    SOAK_CHECK(goro::num_goroutines() == 0, "%zu goroutines left after run()",
               goro::num_goroutines());
    if (!st->quit_closed) st->quit.close();  // stops plain threads still blocked on channels
    for (auto& t : st->threads) t.join();
    SOAK_CHECK(g_bodies_started.load() == g_bodies_ended.load(),
               "goroutine bodies started %" PRIu64 ", ended %" PRIu64
               " (a goroutine was not unwound)",
               g_bodies_started.load(), g_bodies_ended.load());
    SOAK_CHECK(st->joiners_made.load() == st->joiners_done.load(),
               "RAII joiners: %d made, %d finished their wait", st->joiners_made.load(),
               st->joiners_done.load());
    SOAK_CHECK(st->exit_guards_made.load() == st->exit_guards_done.load(),
               "mutex-locking destructors: %d made, %d finished", st->exit_guards_made.load(),
               st->exit_guards_done.load());
    SOAK_CHECK(cfg.shutdown || st->once_runs.load() == 1, "once ran %d times",
               st->once_runs.load());
    SOAK_CHECK(st->once_runs.load() <= 1, "once ran %d times", st->once_runs.load());
    for (int i = 0; i < cfg.n_caf; ++i)
        SOAK_CHECK(st->caf_ran[i].load() + st->caf_stopped[i].load() <= 1,
                   "context_after_func %d: ran %d, stopped %d", i, st->caf_ran[i].load(),
                   st->caf_stopped[i].load());

    round_result res;
    res.goroutines = g_bodies_started.load() - bodies0;
    g_state.store(nullptr);
    st.reset();  // channels, queues and slots die here (with their items)
    check_closures();

    // The ledger: every planned id in exactly one final state.
    for (std::uint64_t k = 0; k < L.n; ++k) {
        const std::uint8_t v = L.st[k].load();
        switch (v) {
            case st_produced | st_consumed:
            case st_produced | st_dropped:
            case st_unsent:
                break;
            case st_produced | st_unwound:
                SOAK_CHECK(cfg.shutdown, "item %" PRIu64 " unwound in a normal round", k);
                break;
            case 0:
                SOAK_CHECK(cfg.shutdown, "item %" PRIu64 " never produced nor recorded unsent", k);
                ++res.never;
                break;
            case st_produced:
                fail("item %#" PRIx64
                     " LOST: produced, then neither consumed, dropped nor destroyed",
                     L.round_tag | k);
            default:
                fail("item %#" PRIx64 " in an impossible state: %s", L.round_tag | k,
                     describe_state(v).c_str());
        }
    }
    res.produced = L.produced.load();
    res.consumed = L.consumed.load();
    res.dropped = L.dropped.load();
    res.unwound = L.unwound.load();
    res.unsent = L.unsent.load();
    SOAK_CHECK(res.produced == res.consumed + res.dropped + res.unwound,
               "produced %" PRIu64 " != consumed %" PRIu64 " + dropped %" PRIu64
               " + unwound %" PRIu64,
               res.produced, res.consumed, res.dropped, res.unwound);
    SOAK_CHECK(L.n == res.produced + res.unsent + res.never,
               "planned %" PRIu64 " != produced %" PRIu64 " + unsent %" PRIu64
               " + never produced %" PRIu64,
               L.n, res.produced, res.unsent, res.never);
    SOAK_CHECK(cfg.shutdown || res.unwound == 0, "normal round with unwound items");
    g_ledger.store(nullptr, std::memory_order_release);
    return res;
}

// ------------------------------------------------------------------ main

std::atomic<std::int64_t> g_round_deadline{INT64_MAX};  // steady ns

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Fails the run when a round takes far too long (a hang), after listing
// every goroutine.
void watchdog() {
    for (;;) {
        std::this_thread::sleep_for(1s);
        if (steady_ns() > g_round_deadline.load()) {
            std::fputs("soak: round timed out; goroutines:\n", stdout);
            goro::dump_goroutines(std::cout);
            if (round_state* st = g_state.load()) std::cout << st->progress_report() << "\n";
            std::cout.flush();
            fail("HANG: the round did not finish in time");
        }
    }
}

std::uint64_t parse_num(const char* flag, const char* s) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (!s[0] || *end || errno || s[0] == '-') {
        std::fprintf(stderr, "goro_soak: %s: not a number: %s\n", flag, s);
        std::exit(2);
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t seconds = 30, procs = 8, first_round = 0, max_rounds = 0, report = 50;
    std::uint64_t round_timeout = (tsan_build || asan_build) ? 180 : 60;
    bool have_seed = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::uint64_t {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "goro_soak: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return parse_num(a.c_str(), argv[++i]);
        };
        if (a == "--seconds") {
            seconds = value();
        } else if (a == "--procs") {
            procs = value();
        } else if (a == "--seed") {
            g_seed = value();
            have_seed = true;
        } else if (a == "--first-round") {
            first_round = value();
        } else if (a == "--max-rounds") {
            max_rounds = value();
        } else if (a == "--report") {
            report = std::max<std::uint64_t>(1, value());
        } else if (a == "--round-timeout") {
            round_timeout = value();
        } else if (a == "--expose-known-bugs") {
            g_expose_known_bugs = true;
        } else if (a == "--step-around-known-bugs") {
            g_expose_known_bugs = false;
        } else {
            std::fprintf(stderr,
                         "usage: goro_soak [--seconds N] [--procs N] [--seed N] "
                         "[--first-round N] [--max-rounds N] [--report N] [--round-timeout S] "
                         "[--expose-known-bugs]\n");
            return 2;
        }
    }
    if (procs == 0 || procs > 4096) {
        std::fprintf(stderr, "goro_soak: --procs must be 1..4096\n");
        return 2;
    }
    if (!have_seed)
        g_seed = mix(static_cast<std::uint64_t>(steady_ns()) ^
                     static_cast<std::uint64_t>(
                         std::chrono::system_clock::now().time_since_epoch().count())) %
                 1000000000ull;
    std::printf("soak: seed=%llu procs=%llu seconds=%llu build=%s\n",
                static_cast<unsigned long long>(g_seed), static_cast<unsigned long long>(procs),
                static_cast<unsigned long long>(seconds), build_name);
    std::fflush(stdout);
    std::set_terminate(&on_terminate);
    std::thread(watchdog).detach();

    const std::int64_t t0 = steady_ns();
    std::uint64_t rounds = 0, shutdowns = 0;
    round_result total;
    for (std::uint64_t round = first_round;; ++round) {
        const double elapsed = static_cast<double>(steady_ns() - t0) / 1e9;
        if (rounds > 0 && elapsed >= static_cast<double>(seconds)) break;
        if (max_rounds && rounds >= max_rounds) break;
        g_round_deadline.store(steady_ns() + static_cast<std::int64_t>(round_timeout) * 1000000000);
        const round_result res = run_round(round, static_cast<unsigned>(procs));
        g_round_deadline.store(INT64_MAX);
        ++rounds;
        {
            std::lock_guard lk(g_desc_mu);
            if (g_desc.rfind("SHUTDOWN", 0) == 0) ++shutdowns;
        }
        total.produced += res.produced;
        total.consumed += res.consumed;
        total.dropped += res.dropped;
        total.unwound += res.unwound;
        total.unsent += res.unsent;
        total.never += res.never;
        total.goroutines += res.goroutines;
        if (rounds % report == 0) {
            std::printf(
                "soak: %llu rounds (%llu shutdowns) %.1fs: items produced=%llu "
                "consumed=%llu dropped=%llu unwound=%llu unsent=%llu goroutines=%llu "
                "bug2=%llu bug3=%llu\n",
                static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(shutdowns),
                static_cast<double>(steady_ns() - t0) / 1e9,
                static_cast<unsigned long long>(total.produced),
                static_cast<unsigned long long>(total.consumed),
                static_cast<unsigned long long>(total.dropped),
                static_cast<unsigned long long>(total.unwound),
                static_cast<unsigned long long>(total.unsent),
                static_cast<unsigned long long>(total.goroutines),
                static_cast<unsigned long long>(g_stranded_after_funcs.load()),
                static_cast<unsigned long long>(g_stranded_goroutines));
            std::fflush(stdout);
        }
    }
    const double secs = static_cast<double>(steady_ns() - t0) / 1e9;
    std::printf(
        "soak: totals: rounds=%llu shutdown_rounds=%llu produced=%llu consumed=%llu "
        "dropped=%llu unwound=%llu unsent=%llu goroutines=%llu\n",
        static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(shutdowns),
        static_cast<unsigned long long>(total.produced),
        static_cast<unsigned long long>(total.consumed),
        static_cast<unsigned long long>(total.dropped),
        static_cast<unsigned long long>(total.unwound),
        static_cast<unsigned long long>(total.unsent),
        static_cast<unsigned long long>(total.goroutines));
    std::printf(
        "soak: known goro bugs (tests/soak_found_test.cpp): %s; after_func items stranded "
        "by a stop() that returned false (bug 2): %llu; goroutines stranded by a timer at the "
        "end of shutdown (bug 3): %llu\n",
        g_expose_known_bugs ? "exposed" : "stepped around",
        static_cast<unsigned long long>(g_stranded_after_funcs.load()),
        static_cast<unsigned long long>(g_stranded_goroutines));
    std::printf("soak: OK rounds=%llu items=%llu seconds=%.1f\n",
                static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(total.produced), secs);
    std::fflush(stdout);
    return 0;
}
