// A goroutine that holds its worker for seconds — spinning without ever
// yielding, or stuck in a blocking system call — must not stall the other
// goroutines while another worker could run them (procs = 2): a ping-pong
// pair on unbuffered channels keeps going, with no gap between consecutive
// round trips over 50 ms. A pair readied by the hog sits in the hog's
// worker's runnext, and a ready() wakes no idle worker for one goroutine:
// the monitor (scheduler/monitor.hpp) hands it over within ~12 ms.
//
// What counts is the stall goro causes. The machine is shared (2 vCPUs of a
// VM, the rest of the suite running beside this test), and the OS or the
// hypervisor may keep the pair's thread off the CPU for tens, even
// hundreds of milliseconds. So each gap is charged to goro from the
// accounting of the thread that ran the pair at the gap's end
// (/proc/.../schedstat, voluntary context switches), sampled before the
// gap began (for the first gap, the hand-off off the hog's worker, every
// thread's accounting is taken when the pair is readied):
//   - in full if the pair ran on another thread before the gap;
//   - if the thread slept meanwhile (a voluntary context switch: its worker
//     went idle while the pair waited elsewhere), all of it but the time the
//     thread then waited runnable for a CPU (run_delay);
//   - else only the time the thread actually ran (to within a scheduler
//     tick): a thread that neither slept nor ran was preempted by the OS or
//     its vCPU was not running.
// And a gap is not charged while a plain thread outside goro that sleeps
// 1 ms at a time (stall_canary) was held up too: the whole machine stalled.
// Measured here at load 7-13: raw gaps up to 817 ms; of goro's share, the
// first gap (the monitor's hand-off) ~10-18 ms, the others under ~8 ms (a
// tick of on-CPU time counted in).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using steady = std::chrono::steady_clock;

namespace {

// How long the hog holds its worker (shorter under sanitizers).
constexpr std::chrono::milliseconds hog_for = goro_test::sanitized ? 2000ms : 5000ms;
constexpr std::chrono::milliseconds max_allowed_gap = 50ms;

volatile std::uint64_t sink;

void spin_until(steady::time_point end) {
    std::uint64_t x = 0;
    while (steady::now() < end) x = x * 6364136223846793005ULL + 1;  // no yield, no park
    sink = x;
}

void usleep_until(steady::time_point end) {
    for (auto now = steady::now(); now < end; now = steady::now())
        ::usleep(static_cast<useconds_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(end - now).count()));
}

// A thread's scheduling accounting. on_cpu lags by up to a scheduler tick
// for a running thread (the kernel folds the running slice in at ticks).
struct thread_times {
    pid_t tid = 0;  // 0: none
    std::chrono::nanoseconds on_cpu{0}, run_delay{0};
    long voluntary_switches = 0;
};

pid_t this_tid() {
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

void read_schedstat(const char* path, thread_times& t) {
    if (FILE* f = std::fopen(path, "r")) {
        unsigned long long on_cpu = 0, delay = 0;
        if (std::fscanf(f, "%llu %llu", &on_cpu, &delay) == 2) {
            t.on_cpu = std::chrono::nanoseconds(static_cast<std::int64_t>(on_cpu));
            t.run_delay = std::chrono::nanoseconds(static_cast<std::int64_t>(delay));
        }
        std::fclose(f);
    }
}

// The calling thread's.
thread_times read_thread_times() {
    thread_times t;
    t.tid = this_tid();
    read_schedstat("/proc/thread-self/schedstat", t);
    rusage ru{};
    ::getrusage(RUSAGE_THREAD, &ru);
    t.voluntary_switches = ru.ru_nvcsw;
    return t;
}

// Every thread's of the process (taken where the first gap begins: the
// pair's thread is not known yet).
std::vector<thread_times> read_all_thread_times() {
    std::vector<thread_times> all;
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return all;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        thread_times t;
        t.tid = static_cast<pid_t>(std::atoi(e->d_name));
        const std::string dir = std::string("/proc/self/task/") + e->d_name;
        read_schedstat((dir + "/schedstat").c_str(), t);
        if (FILE* f = std::fopen((dir + "/status").c_str(), "r")) {
            char line[256];
            while (std::fgets(line, sizeof line, f))
                if (std::sscanf(line, "voluntary_ctxt_switches: %ld", &t.voluntary_switches) == 1)
                    break;
            std::fclose(f);
        }
        all.push_back(t);
    }
    ::closedir(d);
    return all;
}

thread_times find_thread(const std::vector<thread_times>& all, pid_t tid) {
    for (const thread_times& t : all)
        if (t.tid == tid) return t;
    return {};
}

// The part of a gap goro is to blame for (see the top of the file), given
// the accounting sampled before the gap began and at its end.
std::chrono::nanoseconds goro_share(std::chrono::nanoseconds gap, const thread_times& before,
                                    const thread_times& after) {
    if (before.tid != after.tid) return gap;  // none before, or another thread
    if (after.voluntary_switches != before.voluntary_switches)
        return gap - (after.run_delay - before.run_delay);
    return std::min(gap, after.on_cpu - before.on_cpu);
}

// A plain thread outside goro that sleeps 1 ms at a time. When it too wakes
// late, the machine (the OS, the hypervisor, the rest of the suite) held
// every thread back, and that time is not goro's: in one suite run at load
// 17, two of these tests, in two processes, saw a 560 and a 570 ms gap at
// the same moment.
class stall_canary {
  public:
    stall_canary() : thread_([this] { loop(); }) {}
    ~stall_canary() {
        stop_ = true;
        thread_.join();
    }
    // How much of [from, to] the canary was held up.
    std::chrono::nanoseconds overlap(steady::time_point from, steady::time_point to) {
        std::lock_guard<std::mutex> lk(mu_);
        std::chrono::nanoseconds sum{0};
        for (auto [a, b] : stalls_) {
            const steady::time_point lo = std::max(a, from), hi = std::min(b, to);
            if (hi > lo) sum += hi - lo;
        }
        return sum;
    }

  private:
    void loop() {
        while (!stop_) {
            const steady::time_point t0 = steady::now();
            std::this_thread::sleep_for(1ms);
            const steady::time_point t1 = steady::now();
            if (t1 - t0 > 5ms) {
                std::lock_guard<std::mutex> lk(mu_);
                stalls_.emplace_back(t0 + 1ms, t1);
            }
        }
    }
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::pair<steady::time_point, steady::time_point>> stalls_;
    std::thread thread_;
};

// How the ping-pong pair gets going.
enum class pair_start {
    // The pair waits parked; the hog readies it (a send: it lands in the
    // hog's worker's runnext, waking nobody), then hogs. Only the monitor
    // can hand it to the idle worker.
    readied_by_the_hog,
    // The main goroutine readies it once the hog runs.
    readied_after_the_hog,
};

struct result {
    std::chrono::nanoseconds max_gap{0};         // raw
    std::chrono::nanoseconds max_goro_stall{0};  // goro's share (above)
    std::chrono::nanoseconds first_gap{0};       // from the ready to the first round trip
    long trips = 0;
};

// Runs a ping-pong pair while a goroutine holds its worker for hog_for
// (hog(end) returns at `end`). The first gap counts from the moment the
// pair was readied.
template <class Hog>
result ping_pong_while(pair_start how, Hog hog) {
    result r;
    stall_canary canary;
    goro::run(procs(2), [&] {
        std::atomic<bool> hog_running{false}, hog_done{false};
        auto ping = goro::make_chan<int>();
        auto pong = goro::make_chan<int>();
        // When the pair was readied, and every thread's accounting then.
        struct readied {
            steady::time_point at;
            std::vector<thread_times> threads;
        };
        auto start = goro::make_chan<readied>();
        auto ready_pair = [&] {
            std::vector<thread_times> threads = read_all_thread_times();
            start.send(readied{steady::now(), std::move(threads)});
        };
        goro::wait_group pair;
        pair.go([&] {  // echo
            for (;;) {
                auto v = ping.recv();
                if (!v) return;
                pong.send(*v + 1);
            }
        });
        pair.go([&] {  // measures
            const readied from = *start.recv();
            steady::time_point last = from.at;
            // Sampled at most ~1 ms before each gap begins (a sample costs
            // microseconds: not on every round trip); for the first, the
            // accounting of the thread that ends it, taken at the ready.
            thread_times sample;
            steady::time_point sampled = last;
            while (!hog_done) {
                ping.send(static_cast<int>(r.trips));
                EXPECT_EQ(pong.recv(), r.trips + 1);
                const steady::time_point now = steady::now();
                const std::chrono::nanoseconds gap = now - last;
                if (r.trips == 0) r.first_gap = gap;
                if (gap > r.max_gap) r.max_gap = gap;
                if (r.trips == 0) sample = find_thread(from.threads, this_tid());
                if (gap > 1ms) {
                    auto share = goro_share(gap, sample, read_thread_times());
                    share -= std::min(share, canary.overlap(last, now));
                    if (share > r.max_goro_stall) r.max_goro_stall = share;
                }
                if (r.trips == 0 || now - sampled > 1ms) {
                    sample = read_thread_times();
                    sampled = now;
                }
                last = now;
                ++r.trips;
            }
            ping.close();
        });
        goro::sleep_for(5ms);  // both parked; the other worker goes idle
        goro::wait_group hogger;
        hogger.go([&] {
            // Woken by a timer, on the worker watching timers: the other is
            // asleep by then, and readying one goroutine wakes nobody.
            goro::sleep_for(5ms);
            const steady::time_point end = steady::now() + hog_for;
            hog_running = true;
            if (how == pair_start::readied_by_the_hog) ready_pair();
            hog(end);
            hog_done = true;
        });
        if (how == pair_start::readied_after_the_hog) {
            while (!hog_running) goro::sleep_for(100us);
            ready_pair();
        }
        hogger.wait();
        pair.wait();
    });
    return r;
}

double ms(std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

void check(const result& r) {
    std::printf("round trips %ld; first %.3f ms; max gap %.3f ms, of which goro's %.3f ms\n",
                r.trips, ms(r.first_gap), ms(r.max_gap), ms(r.max_goro_stall));
    EXPECT_LE(r.max_goro_stall, max_allowed_gap)
        << "the ping-pong pair stalled for " << ms(r.max_goro_stall)
        << " ms behind the hog (not counting time its thread waited for a CPU)";
    // The pair ran the whole time: far more than one round trip per 50 ms.
    EXPECT_GT(r.trips, hog_for / max_allowed_gap) << "round trips: " << r.trips;
}

}  // namespace

TEST(BusyLoop, SpinningGoroutineDoesNotDelayAPingPongPairItReadied) {
    check(ping_pong_while(pair_start::readied_by_the_hog, spin_until));
}

TEST(BusyLoop, SpinningGoroutineDoesNotDelayAPingPongPairReadiedAfterIt) {
    check(ping_pong_while(pair_start::readied_after_the_hog, spin_until));
}

TEST(BusyLoop, GoroutineInABlockingSyscallDoesNotDelayAPingPongPairItReadied) {
    check(ping_pong_while(pair_start::readied_by_the_hog, usleep_until));
}

// The worker that watched the timers runs the goroutine a timer readied, and
// that goroutine hogs it; the other worker sleeps without a timeout (only
// one idle worker watches timers). A sleeper whose timer comes due next must
// still wake on time: the monitor notices the overdue timer and wakes the
// idle worker (Go's sysmon does the same). Before, a sleeper slept until
// the hog ended (~405 ms) in about 3 rounds out of 5. Judged so that the OS
// alone cannot fail it on this shared machine (one round once slept the
// whole 400 ms, two others ~100 ms each in one run under ASan): at most one
// round of 8 may sleep into the second half of the hog, and the median
// round must wake within 50 ms of its deadline.
TEST(BusyLoop, ATimerComesDueWhileTheWorkerThatWatchedTimersHogs) {
    constexpr auto hog = 400ms;
    constexpr int rounds = 8;
    std::vector<std::chrono::nanoseconds> slept;
    goro::run(procs(2), [&] {
        for (int round = 0; round < rounds; ++round) {
            goro::wait_group wg;
            wg.go([&] {
                goro::sleep_for(5ms);  // fires on the watcher, which then runs this
                spin_until(steady::now() + hog);
            });
            const steady::time_point before = steady::now();
            goro::sleep_for(20ms);  // due while the hog runs
            slept.push_back(steady::now() - before);
            wg.wait();
        }
    });
    std::sort(slept.begin(), slept.end());
    std::printf("20 ms sleeps took (sorted):");
    for (auto d : slept) std::printf(" %.3f", std::chrono::duration<double, std::milli>(d).count());
    std::printf(" ms\n");
    EXPECT_LT(slept[rounds - 2], hog / 2) << "sleepers waited for the hog to end";
    EXPECT_LT(slept[rounds / 2], 20ms + max_allowed_gap) << "sleepers woke late";
}
