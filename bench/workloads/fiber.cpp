// Boost.Fiber's implementation of the side-by-side workloads
// (bench/workloads.tsv), one function per table row, registered by name in
// `workloads` below: the same work as bench/workloads/goro.cpp and
// bench/go/main.go, written the way a Boost.Fiber user writes it.
// Usage: wl_fiber <workload> <procs> <n> <reps> [key=value ...]
//
// Setup: procs threads (this one and procs - 1 more) each run
// boost::fibers::algo::work_stealing(procs, suspend), or with procs = 1
// the default round_robin on this thread (see pool); fibers use the
// library's default stack (fixedsize_stack, 128 KiB, malloc'd). suspend is
// true: an idle thread sleeps until a fiber is readied for it from another
// thread (new fibers stay in their spawner's queue until a running thread
// steals them). FIBER_SUSPEND=0 gives the library's default, false: idle
// threads keep polling the others' queues, which on a machine with fewer
// cores than threads takes the cores from the threads that have work
// (2 cores, procs = 8: 200,000 ping-pong round trips did not finish in
// 60 s, against 0.07 s with suspend).
// Channels are buffered_channel (its capacity must be a power of two and
// it holds capacity - 1 items) and unbuffered_channel. Boost.Fiber has no
// wait group: wait_group below is the usual atomic counter with a fiber
// mutex and condition variable. It has no select: the select rows print
// n/a (see select_n).
//
// Invariants: each function returns with every fiber it started ended.
// Lock order: the pool's mutex and each wait_group's mutex are leaves
// (nothing else is taken while holding one).
#include <atomic>
#include <boost/fiber/all.hpp>
#include <boost/version.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

namespace fibers = boost::fibers;
using wl::args;

template <class F>
void go(F&& fn) {
    fibers::fiber(std::forward<F>(fn)).detach();
}

// Go's sync.WaitGroup for one round: add() everything before the first
// done() can bring the count to zero; wait() returns once it has.
class wait_group {
  public:
    void add(long k) { n_.fetch_add(k, std::memory_order_relaxed); }
    void done() {
        if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard lk(m_);
            zero_ = true;
            cv_.notify_all();
        }
    }
    void wait() {
        std::unique_lock lk(m_);
        cv_.wait(lk, [&] { return zero_; });
    }

  private:
    std::atomic<long> n_{0};
    fibers::mutex m_;
    fibers::condition_variable cv_;
    bool zero_ = false;  // guarded by m_
};

template <class T>
using bchan = fibers::buffered_channel<T>;
template <class T>
using uchan = fibers::unbuffered_channel<T>;

// Buffered channels take a power-of-two capacity and hold one less.
std::size_t buffered_capacity(long items) {
    std::size_t c = 2;
    while (c - 1 < std::size_t(items)) c *= 2;
    return c;
}

void skynet_node(std::shared_ptr<bchan<long>> out, long num, long size, long div) {
    if (size == 1) {
        out->push(num);
        return;
    }
    auto ch = std::make_shared<bchan<long>>(buffered_capacity(div));
    for (long i = 0; i < div; ++i) {
        long sub = num + i * (size / div);
        go([ch, sub, size, div] { skynet_node(ch, sub, size / div, div); });
    }
    long sum = 0;
    for (long i = 0; i < div; ++i) sum += ch->value_pop();
    out->push(sum);
}

double skynet(const args& a) {
    const long n = a.n, div = a.param("div");
    auto t0 = wl::clock::now();
    auto ch = std::make_shared<bchan<long>>(2);
    go([ch, n, div] { skynet_node(ch, 0, n, div); });
    long sum = ch->value_pop();
    double ms = wl::ms_since(t0);
    wl::check(sum == n * (n - 1) / 2, "skynet: wrong sum");
    return ms;
}

double pingpong(const args& a) {
    uchan<long> ping, pong;
    wait_group wg;
    wg.add(1);
    go([&] {
        for (long v : ping) pong.push(v);
        wg.done();
    });
    auto t0 = wl::clock::now();
    long sum = 0;
    for (long i = 0; i < a.n; ++i) {
        ping.push(i);
        sum += pong.value_pop();
    }
    double ns = wl::ns_per(t0, double(a.n));
    ping.close();
    wg.wait();
    wl::check(sum == a.n * (a.n - 1) / 2, "pingpong: wrong sum");
    return ns;
}

double spawn(const args& a) {
    auto t0 = wl::clock::now();
    wait_group wg;
    wg.add(a.n);
    for (long i = 0; i < a.n; ++i) go([&wg] { wg.done(); });
    wg.wait();
    return wl::ns_per(t0, double(a.n));
}

// Boost.Fiber has no select: a fiber can wait on one channel at a time.
// The ways around it are different work (polling try_pop over the
// channels spins instead of parking; one forwarding fiber per channel into
// a merged channel adds a hop and takes values before the select would
// have chosen them), so these rows are not measured for it.
double select_n(const args&) {
    throw wl::not_available("Boost.Fiber has no select (no wait on several channels at once)");
}

double yield(const args& a) {
    const long g = a.param("goroutines"), each = a.n / g;
    auto t0 = wl::clock::now();
    wait_group wg;
    wg.add(g);
    for (long k = 0; k < g; ++k)
        go([&wg, each] {
            for (long i = 0; i < each; ++i) boost::this_fiber::yield();
            wg.done();
        });
    wg.wait();
    return wl::ns_per(t0, double(each * g));
}

double mpmc(const args& a) {
    const long producers = a.param("producers"), consumers = a.param("consumers");
    // buffered_channel(cap) holds cap - 1: the closest to Go's cap.
    bchan<long> ch(std::size_t(a.param("cap")));
    wait_group items, exited;
    std::vector<long> sums(static_cast<std::size_t>(consumers));
    auto t0 = wl::clock::now();
    items.add(a.n);
    exited.add(producers + consumers);
    for (long p = 0; p < producers; ++p)
        go([&, p] {
            for (long i = p; i < a.n; i += producers) ch.push(i);
            exited.done();
        });
    for (long c = 0; c < consumers; ++c)
        go([&, c] {
            long s = 0;
            for (long v : ch) {
                s += v;
                items.done();
            }
            sums[std::size_t(c)] = s;
            exited.done();
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
    uchan<long> ch;
    wait_group sent, received;
    std::atomic<long> total{0};
    auto t0 = wl::clock::now();
    sent.add(senders);
    received.add(receivers);
    for (long r = 0; r < receivers; ++r)
        go([&] {
            long s = 0;
            for (long v : ch) s += v;
            total.fetch_add(s, std::memory_order_relaxed);
            received.done();
        });
    for (long s = 0; s < senders; ++s)
        go([&, s] {
            for (long i = s; i < a.n; i += senders) ch.push(i);
            sent.done();
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
    fibers::mutex m;
    long counter = 0;
    auto t0 = wl::clock::now();
    wait_group wg;
    wg.add(g);
    for (long k = 0; k < g; ++k)
        go([&] {
            for (long i = 0; i < each; ++i) {
                std::lock_guard lk(m);
                ++counter;
            }
            wg.done();
        });
    wg.wait();
    double ns = wl::ns_per(t0, double(each * g));
    wl::check(counter == each * g, "mutex: lost increments");
    return ns;
}

double sleepers(const args& a) {
    const auto d = std::chrono::milliseconds(a.param("sleep_ms"));
    auto t0 = wl::clock::now();
    wait_group wg;
    wg.add(a.n);
    for (long i = 0; i < a.n; ++i)
        go([&wg, d] {
            boost::this_fiber::sleep_for(d);
            wg.done();
        });
    wg.wait();
    return wl::ms_since(t0);
}

// n fibers parked on gate's pop; calls measure() once all are parked, then
// releases them (close) and waits until all have ended.
template <class F>
void park_all(long n, F measure) {
    uchan<int> gate;
    wait_group parked, exited;
    parked.add(n);
    exited.add(n);
    for (long i = 0; i < n; ++i)
        go([&] {
            parked.done();
            int v;
            (void)gate.pop(v);
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
    boost::this_fiber::sleep_for(std::chrono::milliseconds(a.n));
    return wl::cpu_seconds() - c0;
}

const wl::entry workloads[] = {
    {"skynet", skynet},     {"pingpong", pingpong},     {"spawn", spawn},
    {"select2", select_n},  {"select8", select_n},      {"yield", yield},
    {"mpmc", mpmc},         {"hotchan", hotchan},       {"mutex", mutex},
    {"sleepers", sleepers}, {"spawn_park", spawn_park}, {"rss_parked", rss_parked},
    {"idle_cpu", idle_cpu},
};

// procs threads running work_stealing; the calling thread is one of them.
// The others park their main fiber until the pool is destroyed. With one
// thread the calling thread keeps Boost.Fiber's default round_robin:
// work_stealing(1) never returns from pick_next once its queue is empty
// (it looks for a victim other than itself among 1 thread), so the first
// sleep hangs (Boost 1.74).
class pool {
  public:
    pool(unsigned procs, bool suspend) {
        if (procs == 1) return;
        for (unsigned i = 1; i < procs; ++i)
            threads_.emplace_back([this, procs, suspend] {
                fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(procs, suspend);
                std::unique_lock lk(m_);
                cv_.wait(lk, [this] { return stop_; });
            });
        fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(procs, suspend);
    }
    ~pool() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }

  private:
    fibers::mutex m_;
    fibers::condition_variable cv_;
    bool stop_ = false;  // guarded by m_
    std::vector<std::thread> threads_;
};

}  // namespace

int main(int argc, char** argv) {
    char version[160];
    std::snprintf(version, sizeof version, "Boost.Fiber %d.%d.%d, %s%s", BOOST_VERSION / 100000,
                  BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100,
#ifdef __clang__
                  "", __VERSION__
#else
                  "g++ ", __VERSION__
#endif
    );
    wl::args a;
    if (int rc = wl::parse(argc, argv, version, workloads, a); rc >= 0) return rc;
    const wl::entry* e = wl::find(workloads, a.workload);
    if (!e) return std::fprintf(stderr, "fiber: unknown workload %s\n", a.workload.c_str()), 2;
    const char* s = std::getenv("FIBER_SUSPEND");
    pool p(a.procs, !s || std::atoi(s) != 0);
    return wl::run_reps("fiber", *e, a);
}
