// goro's implementation of the side-by-side workloads (bench/workloads.tsv),
// one function per table row, registered by name in `workloads` below. The
// same work as bench/go/main.go and bench/workloads/fiber.cpp; the command
// line and the result line are in common.hpp.
// Usage: wl_goro <workload> <procs> <n> <reps> [key=value ...]
// Every rep runs inside one goro::run with options.procs = procs.
// Invariants: each function returns with every goroutine it started ended
// (joined through a wait_group or a closed channel). No locks of its own.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common.hpp"
#include "goro/goro.hpp"

namespace {

using wl::args;

void skynet_node(goro::send_chan<long> out, long num, long size, long div) {
    if (size == 1) {
        out.send(num);
        return;
    }
    auto ch = goro::make_chan<long>(std::size_t(div));
    for (long i = 0; i < div; ++i) {
        long sub = num + i * (size / div);
        goro::go([ch, sub, size, div] { skynet_node(ch, sub, size / div, div); });
    }
    long sum = 0;
    for (long i = 0; i < div; ++i) sum += *ch.recv();
    out.send(sum);
}

double skynet(const args& a) {
    const long n = a.n, div = a.param("div");
    auto t0 = wl::clock::now();
    auto ch = goro::make_chan<long>(1);
    goro::go([ch, n, div] { skynet_node(ch, 0, n, div); });
    long sum = *ch.recv();
    double ms = wl::ms_since(t0);
    wl::check(sum == n * (n - 1) / 2, "skynet: wrong sum");
    return ms;
}

double pingpong(const args& a) {
    auto ping = goro::make_chan<long>(), pong = goro::make_chan<long>();
    goro::wait_group wg;
    wg.go([&] {
        for (long v : ping) pong.send(v);
    });
    auto t0 = wl::clock::now();
    long sum = 0;
    for (long i = 0; i < a.n; ++i) {
        ping.send(i);
        sum += *pong.recv();
    }
    double ns = wl::ns_per(t0, double(a.n));
    ping.close();
    wg.wait();
    wl::check(sum == a.n * (a.n - 1) / 2, "pingpong: wrong sum");
    return ns;
}

double spawn(const args& a) {
    auto t0 = wl::clock::now();
    goro::wait_group wg;
    wg.add(a.n);
    for (long i = 0; i < a.n; ++i) goro::go([&wg] { wg.done(); });
    wg.wait();
    return wl::ns_per(t0, double(a.n));
}

// One static select over the K channels (what a Go programmer writes).
template <std::size_t... I>
long select_static(std::vector<goro::chan<long>>& chans, std::index_sequence<I...>) {
    long got = 0;
    goro::select(goro::recv_case(chans[I], [&](std::optional<long> v) { got = *v; })...);
    return got;
}

template <std::size_t K>
double select_k(const args& a) {
    std::vector<goro::chan<long>> chans;
    for (std::size_t i = 0; i < K; ++i) chans.push_back(goro::make_chan<long>());
    goro::wait_group wg;
    wg.go([&] {
        for (long i = 0; i < a.n; ++i) chans[std::size_t(i) % K].send(i);
    });
    auto t0 = wl::clock::now();
    long sum = 0;
    for (long i = 0; i < a.n; ++i) sum += select_static(chans, std::make_index_sequence<K>{});
    double ns = wl::ns_per(t0, double(a.n));
    wg.wait();
    wl::check(sum == a.n * (a.n - 1) / 2, "select: wrong sum");
    return ns;
}

double select_n(const args& a) {
    switch (a.param("cases")) {
        case 2:
            return select_k<2>(a);
        case 8:
            return select_k<8>(a);
        default:
            throw std::invalid_argument("select: cases must be 2 or 8");
    }
}

double yield(const args& a) {
    const long g = a.param("goroutines"), each = a.n / g;
    auto t0 = wl::clock::now();
    goro::wait_group wg;
    for (long k = 0; k < g; ++k)
        wg.go([each] {
            for (long i = 0; i < each; ++i) goro::yield();
        });
    wg.wait();
    return wl::ns_per(t0, double(each * g));
}

double mpmc(const args& a) {
    const long producers = a.param("producers"), consumers = a.param("consumers");
    auto ch = goro::make_chan<long>(std::size_t(a.param("cap")));
    goro::wait_group items, exited;
    std::vector<long> sums(static_cast<std::size_t>(consumers));
    auto t0 = wl::clock::now();
    items.add(a.n);
    for (long p = 0; p < producers; ++p)
        exited.go([&, p] {
            for (long i = p; i < a.n; i += producers) ch.send(i);
        });
    for (long c = 0; c < consumers; ++c)
        exited.go([&, c] {
            long s = 0;
            for (long v : ch) {
                s += v;
                items.done();
            }
            sums[std::size_t(c)] = s;
        });
    items.wait();
    double ns = wl::ns_per(t0, double(a.n));
    ch.close();
    exited.wait();
    long total = 0;
    for (long s : sums) total += s;
    wl::check(total == a.n * (a.n - 1) / 2, "mpmc: lost items");
    return ns;
}

double hotchan(const args& a) {
    const long senders = a.param("goroutines") / 2, receivers = senders;
    auto ch = goro::make_chan<long>();
    goro::wait_group sent, received;
    std::atomic<long> total{0};
    auto t0 = wl::clock::now();
    for (long r = 0; r < receivers; ++r)
        received.go([&] {
            long s = 0;
            for (long v : ch) s += v;
            total.fetch_add(s, std::memory_order_relaxed);
        });
    for (long s = 0; s < senders; ++s)
        sent.go([&, s] {
            for (long i = s; i < a.n; i += senders) ch.send(i);
        });
    sent.wait();
    ch.close();
    received.wait();
    double ns = wl::ns_per(t0, double(a.n));
    wl::check(total.load() == a.n * (a.n - 1) / 2, "hotchan: lost items");
    return ns;
}

double mutex(const args& a) {
    const long g = a.param("goroutines"), each = a.n / g;
    goro::mutex m;
    long counter = 0;
    auto t0 = wl::clock::now();
    goro::wait_group wg;
    for (long k = 0; k < g; ++k)
        wg.go([&] {
            for (long i = 0; i < each; ++i) {
                std::lock_guard lk(m);
                ++counter;
            }
        });
    wg.wait();
    double ns = wl::ns_per(t0, double(each * g));
    wl::check(counter == each * g, "mutex: lost increments");
    return ns;
}

double sleepers(const args& a) {
    const auto d = std::chrono::milliseconds(a.param("sleep_ms"));
    auto t0 = wl::clock::now();
    goro::wait_group wg;
    wg.add(a.n);
    for (long i = 0; i < a.n; ++i)
        goro::go([&wg, d] {
            goro::sleep_for(d);
            wg.done();
        });
    wg.wait();
    return wl::ms_since(t0);
}

// n goroutines parked on gate's receive; calls measure() once all are
// parked, then releases them and waits until all have ended.
template <class F>
void park_all(long n, F measure) {
    auto gate = goro::make_chan<goro::unit>();
    goro::wait_group parked, exited;
    parked.add(n);
    exited.add(n);
    for (long i = 0; i < n; ++i)
        goro::go([&] {
            parked.done();
            (void)gate.recv();
            exited.done();
        });
    parked.wait();
    measure();
    gate.close();
    exited.wait();
}

double spawn_park(const args& a) {
    double ms = 0;
    auto t0 = wl::clock::now();
    park_all(a.n, [&] { ms = wl::ms_since(t0); });
    return ms;
}

double rss_parked(const args& a) {
    double before = wl::rss_pte_bytes(), after = 0;
    park_all(a.n, [&] { after = wl::rss_pte_bytes(); });
    return (after - before) / double(a.n);
}

double idle_cpu(const args& a) {
    double c0 = wl::cpu_seconds();
    goro::sleep_for(std::chrono::milliseconds(a.n));
    return wl::cpu_seconds() - c0;
}

const wl::entry workloads[] = {
    {"skynet", skynet},     {"pingpong", pingpong},     {"spawn", spawn},
    {"select2", select_n},  {"select8", select_n},      {"yield", yield},
    {"mpmc", mpmc},         {"hotchan", hotchan},       {"mutex", mutex},
    {"sleepers", sleepers}, {"spawn_park", spawn_park}, {"rss_parked", rss_parked},
    {"idle_cpu", idle_cpu},
};

}  // namespace

int main(int argc, char** argv) {
    char version[160];
    std::snprintf(version, sizeof version, "goro %s, %s%s", GORO_VERSION_STRING,
#ifdef __clang__
                  "", __VERSION__
#else
                  "g++ ", __VERSION__
#endif
    );
    wl::args a;
    if (int rc = wl::parse(argc, argv, version, workloads, a); rc >= 0) return rc;
    const wl::entry* e = wl::find(workloads, a.workload);
    if (!e) return std::fprintf(stderr, "goro: unknown workload %s\n", a.workload.c_str()), 2;
    goro::options o;
    o.procs = a.procs;
    return goro::run(o, [&] {
        int rc = wl::run_reps("goro", *e, a);
        // WL_STATS=1: the workers' counters on stderr (what differs between
        // a fast and a slow run: who stole, who slept).
        if (const char* v = std::getenv("WL_STATS"); v && *v == '1')
            for (const goro::worker_stats& w : goro::stats().workers)
                std::fprintf(
                    stderr,
                    "worker %u: runs %llu runnext %llu spawned %llu local %llu global "
                    "%llu stolen %llu steal_tries %llu futex_sleeps %llu wakes_spin %llu\n",
                    w.index, (unsigned long long)w.goroutines_run,
                    (unsigned long long)w.picks_runnext, (unsigned long long)w.picks_spawned,
                    (unsigned long long)w.picks_local, (unsigned long long)w.picks_global,
                    (unsigned long long)w.picks_stolen, (unsigned long long)w.steal_attempts,
                    (unsigned long long)w.futex_sleeps, (unsigned long long)w.wakes_spin);
        return rc;
    });
}
