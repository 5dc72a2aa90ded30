// A program built with -fsanitize=thread or -fsanitize=address against an
// ordinary libgoro (compiled without sanitizers): goro finds the sanitizer
// at run time and tells it about stack switches and its hand-offs
// (src/sanitizers/hooks.hpp). Run by tests/sanitizer_consumer/check.sh,
// which fails on any sanitizer report.
//
// Every round passes heap-owning values (std::string, std::vector) from one
// goroutine to another through each of goro's hand-offs, on several worker
// threads, so that without the hand-offs announced TSan would see the value
// written on one thread and read on another with nothing in between:
// unbuffered and buffered channels, select, spawn (the closure), mutex (the
// first hand-off of many fresh ones too), rw_mutex, wait_group, once, cond,
// semaphore, context cancellation (also seen late, and through a
// stop_token), timers, goro::blocking, errgroup, plain threads, select with
// a timeout, a TCP connection, errno read by goroutines on every worker,
// and the unwinding of parked goroutines at the end of run(). Exceptions
// thrown and caught on goroutine stacks exercise ASan's view of those
// stacks.
#include <goro/goro.hpp>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "workload: FAILED: %s\n", what);
        ++failures;
    }
}

std::string payload(int i) {
    return "value " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), '*');
}

// Unbuffered ping-pong between two goroutines: each value is written by one
// and read (and freed) by the other.
void ping_pong(int rounds) {
    auto ping = goro::make_chan<std::string>();
    auto pong = goro::make_chan<std::string>();
    goro::wait_group wg;
    wg.go([&] {
        for (auto v = ping.recv(); v; v = ping.recv()) pong.send(*v + "!");
        pong.close();
    });
    for (int i = 0; i < rounds; ++i) {
        ping.send(payload(i));
        auto back = pong.recv();
        expect(back && *back == payload(i) + "!", "ping-pong value");
    }
    ping.close();
    expect(!pong.recv(), "pong closed");
    wg.wait();
}

// Producers and consumers over a buffered channel, fanned in with select.
void buffered_select(int producers, int per_producer) {
    auto a = goro::make_chan<std::vector<int>>(4);
    auto b = goro::make_chan<std::vector<int>>(4);
    goro::wait_group wg;
    for (int p = 0; p < producers; ++p)
        wg.go([&, p] {
            for (int i = 0; i < per_producer; ++i) {
                std::vector<int> v(static_cast<std::size_t>(1 + i % 7), p * 1000 + i);
                if (i % 2)
                    a.send(std::move(v));
                else
                    goro::select(goro::send_case(a, std::vector<int>(v)),
                                 goro::send_case(b, std::vector<int>(v)));
            }
        });
    auto done = goro::make_chan<goro::unit>();
    goro::go([&] {
        wg.wait();
        done.close();
    });
    long sum = 0, got = 0;
    bool finished = false;
    while (!finished || a.size() > 0 || b.size() > 0) {
        auto take = [&](std::optional<std::vector<int>> v) {
            if (!v) return;
            ++got;
            for (int x : *v) sum += x % 1000;
        };
        goro::select(goro::recv_case(a, take), goro::recv_case(b, take),
                     goro::recv_case(done, [&](auto) {
                         finished = true;
                         done = {};
                     }));
    }
    expect(got == long(producers) * per_producer, "every buffered value received");
    expect(sum > 0, "buffered values read");
}

// The first hand-off of many fresh mutexes, each from a holder that unlocks
// by the inline fast path to a goroutine spinning in goro's lock_slow
// meanwhile. The first release TSan sees on such a mutex is then the one it
// makes inside the unlock's atomic, which the locker observes with goro's
// own (unseen) atomic: lost under LLVM 14's TSan without goro's
// announcement for that case (sanitizers/hooks.hpp,
// tsan_acquire_inline_release). The holder is a plain thread; the two step
// through the mutexes in lockstep with relaxed atomics (no happens-before
// for TSan). The locker comes only while the holder is seen running (its
// heartbeat moves), so that both surely run at once, and the holder then
// unlocks after a delay that sweeps the locker's spin.
void first_mutex_handoffs(int mutexes) {
    std::vector<goro::mutex> ms(static_cast<std::size_t>(mutexes));
    std::vector<std::string> values(ms.size());
    std::atomic<int> step{0};  // 2k + 1: ms[k] is held; 2k + 2: its locker comes
    std::atomic<unsigned> heartbeat{0};
    goro::wait_group wg;
    wg.go([&] {
        for (int k = 0; k < mutexes; ++k) {
            while (step.load(std::memory_order_relaxed) < 2 * k + 1) std::this_thread::yield();
            for (unsigned h = heartbeat.load(std::memory_order_relaxed);
                 heartbeat.load(std::memory_order_relaxed) == h;)
                std::this_thread::yield();
            step.store(2 * k + 2, std::memory_order_relaxed);
            std::lock_guard lk(ms[std::size_t(k)]);
            expect(values[std::size_t(k)] == payload(k), "fresh mutex: the holder's value");
        }
    });
    std::thread holder([&] {
        for (int k = 0; k < mutexes; ++k) {
            std::unique_lock lk(ms[std::size_t(k)]);
            values[std::size_t(k)] = payload(k);
            step.store(2 * k + 1, std::memory_order_relaxed);
            while (step.load(std::memory_order_relaxed) < 2 * k + 2)
                heartbeat.fetch_add(1, std::memory_order_relaxed);
            for (int i = 0; i < k % 64; ++i) (void)step.load(std::memory_order_relaxed);
        }
    });
    wg.wait();
    holder.join();  // done: the locker took the last mutex after its unlock
}

// Shared state guarded by goro's locks, changed from many goroutines.
void locks(int goroutines, int rounds) {
    goro::mutex m;
    goro::rw_mutex rw;
    goro::semaphore sem(1);  // a lock for sem_guarded
    std::string sem_guarded;
    std::vector<std::string> log;
    std::string shared = "start";
    goro::wait_group wg;
    for (int g = 0; g < goroutines; ++g)
        wg.go([&, g] {
            for (int i = 0; i < rounds; ++i) {
                {
                    std::lock_guard lk(m);
                    log.push_back(payload(g * rounds + i));
                }
                if (i % 3 == 0) {
                    std::lock_guard lk(rw);
                    shared = payload(i);
                } else {
                    std::shared_lock lk(rw);
                    expect(shared.rfind("value", 0) == 0 || shared == "start", "rw value");
                }
                sem.acquire();
                sem_guarded += 'x';
                sem.release();
                if (i % 8 == 0) goro::yield();
            }
        });
    wg.wait();
    expect(log.size() == std::size_t(goroutines) * rounds, "mutex-guarded log complete");
    expect(sem_guarded.size() == std::size_t(goroutines) * rounds, "semaphore-guarded string");
}

// once, cond, wait_group's count as published state.
void once_and_cond() {
    goro::once o;
    std::string init;
    goro::mutex m;
    goro::cond c(m);
    std::vector<std::string> queue;
    bool closed = false;
    goro::wait_group wg;
    for (int i = 0; i < 8; ++i)
        wg.go([&] {
            o.call([&] { init = "initialised by one goroutine"; });
            expect(init.size() > 10, "once result visible");
        });
    int consumed = 0;
    wg.go([&] {
        std::unique_lock lk(m);
        for (;;) {
            c.wait(lk, [&] { return closed || !queue.empty(); });
            if (queue.empty()) return;
            std::string v = std::move(queue.back());
            queue.pop_back();
            consumed += v.empty() ? 0 : 1;
        }
    });
    for (int i = 0; i < 200; ++i) {
        {
            std::lock_guard lk(m);
            queue.push_back(payload(i));
        }
        c.signal();
        if (i % 16 == 0) goro::yield();
    }
    {
        std::lock_guard lk(m);
        closed = true;
    }
    c.broadcast();
    wg.wait();
    expect(consumed == 200, "cond queue drained");
}

// Goroutines that first look at a context after its cancel (they sleep
// through it): done() (the shared closed channel, which carries nothing of
// this cancel), a child context (cancelled at birth) and context_after_func
// (started at once). The cancel itself must order what the canceller wrote
// before it (context.cpp). Nothing else orders them: a child made before
// the cancel, or a sleep, announces nothing from the canceller.
void cancel_seen_late(int contexts, int goroutines) {
    for (int k = 0; k < contexts; ++k) {
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        std::string note;
        goro::wait_group wg;
        for (int g = 0; g < goroutines; ++g)
            wg.go([&, g, c = ctx] {
                goro::sleep_for(1ms);
                if (g % 3 == 0) {
                    c.done().recv();
                    expect(note == "written before cancel", "done() after the cancel");
                } else if (g % 3 == 1) {
                    for (;;) {  // until one is born cancelled (a slow spawner)
                        auto [child, stop] = goro::with_cancel(c);
                        const bool born_cancelled = child.err() == goro::errc::canceled;
                        stop();
                        if (born_cancelled) break;
                        goro::sleep_for(1ms);
                    }
                    expect(note == "written before cancel", "a child made after the cancel");
                } else {
                    auto ran = goro::make_chan<goro::unit>();
                    goro::context_after_func(c, [&, ran] {
                        expect(note == "written before cancel", "after_func after the cancel");
                        ran.close();
                    });
                    ran.recv();
                }
            });
        note = "written before cancel";
        cancel();
        wg.wait();
    }
}

// Goroutines polling a context's std::stop_token (no done() channel, no
// goro call that observes the cancel): the stop they see orders what the
// canceller wrote before it. This program never calls request_stop()
// itself, so the one that runs is goro's, compiled without TSan: the stop
// must be announced (context.cpp).
void stop_token_pollers(int rounds) {
    for (int r = 0; r < rounds; ++r) {
        auto [parent, cancel_parent] = goro::with_cancel(goro::background());
        auto [ctx, cancel] = goro::with_cancel(parent);
        std::string note;
        goro::wait_group wg;
        for (int g = 0; g < 3; ++g)
            wg.go([&, tok = (g == 0 ? parent : ctx).stop_token()] {
                while (!tok.stop_requested()) goro::yield();
                expect(note == "written before the stop", "a stop_token's stop");
            });
        goro::sleep_for(std::chrono::microseconds(100));
        note = "written before the stop";
        if (r % 2)
            cancel_parent();
        else
            cancel();
        cancel_parent();
        wg.wait();
    }
}

// Context cancellation and values; timers; after_func.
void contexts_and_time() {
    goro::context_key<std::string> key;
    auto base = goro::with_value(goro::background(), key, std::string("request-42"));
    auto [ctx, cancel] = goro::with_cancel(base);
    std::string note;  // written before cancel(), read after done()
    goro::wait_group wg;
    for (int i = 0; i < 4; ++i)
        wg.go([&, c = ctx] {
            c.done().recv();
            expect(note == "cancelled on purpose", "written before cancel");
            expect(c.value(key) && *c.value(key) == "request-42", "context value");
            expect(c.err() == goro::errc::canceled, "context err");
        });
    goro::sleep_for(1ms);
    note = "cancelled on purpose";
    cancel();
    wg.wait();

    auto [tctx, tcancel] = goro::with_timeout(goro::background(), 2ms);
    tctx.done().recv();
    expect(tctx.err() == goro::errc::deadline_exceeded, "deadline");
    tcancel();

    std::string from_timer;
    auto fired = goro::make_chan<goro::unit>();
    goro::timer t = goro::after_func(1ms, [&] {
        from_timer = "set by after_func";
        fired.close();
    });
    fired.recv();
    expect(from_timer == "set by after_func", "after_func's write visible");
    int ticks = 0;
    goro::ticker k(1ms);
    while (ticks < 3) {
        goro::select(goro::recv_case(k.c(), [&](auto) { ++ticks; }),
                     goro::recv_case(goro::after(1s), [](auto) {}));
    }
    k.stop();
}

// goro::blocking and errgroup carry results and failures back.
void blocking_and_errgroup() {
    std::vector<std::string> results(8);
    goro::errgroup g;
    for (int i = 0; i < 8; ++i)
        g.go([&, i] { results[std::size_t(i)] = goro::blocking([i] { return payload(i); }); });
    g.wait();
    for (int i = 0; i < 8; ++i) expect(results[std::size_t(i)] == payload(i), "blocking result");

    goro::errgroup f;
    f.go([]() -> std::error_code { throw std::runtime_error("task failed on purpose"); });
    f.go([] { goro::sleep_for(1ms); });
    try {
        f.wait();
        expect(false, "errgroup rethrows");
    } catch (const std::runtime_error& e) {
        expect(std::string(e.what()) == "task failed on purpose", "errgroup failure carried");
    }
}

// Plain threads and goroutines hand values to each other; a select with
// a timeout; bytes through a loopback TCP connection.
void threads_select_net() {
    auto to_goroutines = goro::make_chan<std::string>();
    auto to_thread = goro::make_chan<std::string>(2);
    std::thread t([&] {
        for (int i = 0; i < 50; ++i) {
            to_goroutines.send(payload(i));
            auto back = to_thread.recv();
            expect(back && back->size() == payload(i).size() + 1, "plain thread got it back");
        }
        to_goroutines.close();
    });
    for (auto v : to_goroutines) to_thread.send(v + "#");
    t.join();

    auto never = goro::make_chan<int>();
    int timeouts = 0;
    for (int i = 0; i < 3; ++i)
        goro::select(goro::recv_case(never, [](auto) {}),
                     goro::recv_case(goro::after(1ms), [&](auto) { ++timeouts; }));
    expect(timeouts == 3, "select timed out");

    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    std::string received;
    goro::wait_group wg;
    wg.go([&] {
        goro::net::conn c = ln.accept();
        char buf[256];
        while (std::size_t n = c.read(buf, sizeof buf)) received.append(buf, n);
    });
    {
        goro::net::conn c = goro::net::dial("tcp", ln.address());
        for (int i = 0; i < 20; ++i) c.write_all(payload(i));
    }
    wg.wait();
    std::string expected;
    for (int i = 0; i < 20; ++i) expected += payload(i);
    expect(received == expected, "bytes through the loopback connection");
}

// errno read after a failed call, from goroutines on every worker (errno
// is the worker thread's, set up before the goroutine ran there).
void errno_after_failed_calls(int goroutines) {
    goro::wait_group wg;
    for (int g = 0; g < goroutines; ++g)
        wg.go([] {
            for (int i = 0; i < 20; ++i) {
                expect(::close(-1) < 0 && errno == EBADF, "errno after a failed close");
                goro::yield();
            }
        });
    wg.wait();
}

// Exceptions thrown and caught on goroutine stacks, across parks.
void exceptions(int goroutines) {
    goro::wait_group wg;
    auto ch = goro::make_chan<int>();
    for (int g = 0; g < goroutines; ++g)
        wg.go([&, g] {
            try {
                std::vector<std::string> locals(16, payload(g));
                ch.send(g);
                throw std::runtime_error(locals.back());
            } catch (const std::runtime_error& e) {
                expect(std::string(e.what()) == payload(g), "exception on a goroutine stack");
            }
        });
    for (int g = 0; g < goroutines; ++g) ch.recv();
    wg.wait();
}

}  // namespace

// Goroutines still parked when run()'s function returns are unwound: their
// destructors run, and what they write is seen after run() returns.
struct note_on_unwind {
    std::vector<std::string>* notes;
    goro::mutex* m;
    ~note_on_unwind() {
        std::lock_guard lk(*m);
        notes->push_back("unwound");
    }
};

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
    goro::options opts;
    opts.procs = 4;
    std::vector<std::string> notes;
    goro::mutex notes_mu;
    const int status = goro::run(opts, [&] {
        for (int r = 0; r < rounds; ++r) {
            ping_pong(2000);
            buffered_select(4, 300);
            locks(8, 100);
            first_mutex_handoffs(1000);
            once_and_cond();
            contexts_and_time();
            cancel_seen_late(20, 6);
            stop_token_pollers(10);
            blocking_and_errgroup();
            threads_select_net();
            errno_after_failed_calls(16);
            exceptions(64);
        }
        auto never = goro::make_chan<int>();
        for (int i = 0; i < 8; ++i)
            goro::go([&, never] {
                note_on_unwind guard{&notes, &notes_mu};
                never.recv();
            });
        goro::sleep_for(1ms);
        return failures ? 1 : 0;
    });
    expect(notes.size() == 8, "every parked goroutine unwound before run() returned");
    std::printf("workload: %d rounds, %s\n", rounds, failures ? "FAILED" : "all checks passed");
    return failures || status ? 1 : 0;
}
