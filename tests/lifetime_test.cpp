// Lifetimes: every primitive may be destroyed as soon as the other party's
// last call on it has returned (as std::mutex and std::latch promise), and a
// blocked channel operation or select keeps its channels alive. Each test
// frees the object on the heap right after the waiting side returns, many
// times, from goroutines and plain threads: under ASan a touch after the
// release is a heap-use-after-free report; in Release it is often a crash.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro_test::procs;
using goro_test::scaled;

namespace {

const long rounds = scaled(20000, 10);

// True when a receiver is queued on c (the select below has parked).
bool has_receiver(const goro::chan<int>& c) {
    goro::detail::chan_core* core = c.core();
    std::lock_guard lk(core->mu);
    return !core->recvq.empty();
}

class Lifetime : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Procs, Lifetime, ::testing::Values(1u, 2u, 8u));

}  // namespace

// Pairs racing on fresh objects, 16 at a time on 8 workers over the cores:
// the OS preempts workers at arbitrary points, which opens the window
// between a release and the releaser's last touch.
template <class Round>
void race_in_pairs(long rounds_per_pair, Round round) {
    goro::run(procs(8), [&] {
        goro::wait_group pairs;
        for (int p = 0; p < 16; ++p)
            pairs.go([&] {
                for (long i = 0; i < rounds_per_pair; ++i) round(i);
            });
        pairs.wait();
    });
}

// Spins (yielding now and then) until pred() holds.
template <class Pred>
void spin_until(Pred pred) {
    for (unsigned k = 1; !pred(); ++k)
        if (k % 64 == 0) goro::yield();
}

// The waiter sees zero and frees the wait_group at once, while the done()
// that took it to zero may still be inside it (it locked the wait_group's
// mutex after the decrement: heap-use-after-free).
TEST(Lifetime, WaitGroupFreedAsSoonAsItReadsZero) {
    race_in_pairs(scaled(20000, 4), [](long) {
        auto* wg = new goro::wait_group;
        wg->add(1);
        goro::go([wg] { wg->done(); });
        spin_until([&] { return wg->count() == 0; });
        wg->wait();  // returns at once: the counter is zero
        delete wg;
    });
}

TEST_P(Lifetime, WaitGroupFreedRightAfterWaitFromGoroutines) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds; ++i) {
            auto* wg = new goro::wait_group;
            wg->add(2);
            goro::go([wg] { wg->done(); });
            goro::go([wg] { wg->done(); });
            wg->wait();
            delete wg;
        }
    });
}

// The same with plain threads calling done() and a goroutine waiting, and
// the other way round: the header's `wait_group wg; ...; wg.wait();` idiom.
TEST(LifetimeThreads, WaitGroupFreedRightAfterWaitAcrossThreads) {
    goro::run(procs(2), [] {
        for (long i = 0; i < rounds / 10; ++i) {
            auto* wg = new goro::wait_group;
            wg->add(1);
            std::thread t([wg] { wg->done(); });
            wg->wait();
            delete wg;
            t.join();
        }
    });
    for (long i = 0; i < rounds / 10; ++i) {
        auto* wg = new goro::wait_group;
        wg->add(1);
        goro::go([wg] { wg->done(); });
        wg->wait();  // a plain thread waits
        delete wg;
    }
}

// The next owner takes the mutex as soon as it is released, unlocks and
// frees it while the previous owner's unlock() may still be running (it
// read the waiter count, and could lock the queue, after the release).
TEST(Lifetime, MutexFreedByTheNextOwnerAsSoonAsItGetsIt) {
    race_in_pairs(scaled(20000, 4), [](long i) {
        auto* m = new goro::mutex;
        auto* got = new std::atomic<bool>(false);
        m->lock();
        goro::go([m, got, i] {
            if (i % 2)
                m->lock();  // queues (may park) while main holds it
            else
                spin_until([&] { return m->try_lock(); });
            m->unlock();
            delete m;
            got->store(true);
        });
        if (i % 4 < 2) goro::yield();
        m->unlock();
        spin_until([&] { return got->load(); });
        delete got;
    });
}

TEST_P(Lifetime, MutexFreedByTheNextOwner) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds; ++i) {
            auto* m = new goro::mutex;
            auto* done = new goro::wait_group;
            m->lock();
            done->add(1);
            goro::go([m, done] {
                m->lock();  // parks (or spins) until main unlocks
                m->unlock();
                delete m;
                done->done();
            });
            if (i % 2) goro::yield();  // let it park sometimes
            m->unlock();
            done->wait();
            delete done;
        }
    });
}

TEST_P(Lifetime, RwMutexFreedByTheLastReader) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds; ++i) {
            auto* rw = new goro::rw_mutex;
            goro::wait_group done;
            rw->lock();
            done.add(2);
            std::atomic<int> left{2};
            for (int r = 0; r < 2; ++r)
                goro::go([rw, &done, &left] {
                    rw->lock_shared();
                    rw->unlock_shared();
                    if (left.fetch_sub(1) == 1) delete rw;
                    done.done();
                });
            if (i % 2) goro::yield();
            rw->unlock();
            done.wait();
        }
    });
}

TEST_P(Lifetime, SemaphoreFreedByTheWaiter) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds; ++i) {
            auto* s = new goro::semaphore(1);
            s->acquire(1);
            goro::go([s] { s->release(1); });
            s->acquire(1);  // granted by the goroutine's release
            s->release(1);
            delete s;
        }
    });
}

TEST_P(Lifetime, ContextAcquireFreedByTheWaiter) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds / 4; ++i) {
            auto* s = new goro::semaphore(1);
            s->acquire(1);
            goro::go([s] { s->release(1); });
            EXPECT_FALSE(s->acquire(goro::background(), 1));
            s->release(1);
            delete s;
        }
    });
}

TEST_P(Lifetime, CondAndMutexFreedByTheWaiter) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds / 2; ++i) {
            auto* m = new goro::mutex;
            auto* c = new goro::cond(*m);
            bool ready = false;
            goro::go([m, c, &ready] {
                std::lock_guard lk(*m);
                ready = true;
                c->signal();
            });
            {
                std::unique_lock lk(*m);
                c->wait(lk, [&] { return ready; });
            }
            delete c;
            delete m;
        }
    });
}

TEST_P(Lifetime, OnceFreedByACallerThatWaited) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds / 2; ++i) {
            auto* o = new goro::once;
            auto* started = new goro::wait_group;
            started->add(1);
            auto gate = goro::make_chan<int>();
            goro::go([o, started, gate] {
                o->call([&] {
                    started->done();
                    gate.recv();  // holds the once while main arrives
                });
            });
            started->wait();
            delete started;
            goro::go([gate] { gate.send(1); });
            o->call([] { ADD_FAILURE() << "ran twice"; });  // parks until the first call ends
            delete o;
        }
    });
}

TEST_P(Lifetime, ErrgroupDroppedRightAfterWait) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds / 4; ++i) {
            auto g = std::make_unique<goro::errgroup>();
            for (int t = 0; t < 3; ++t) g->go([] {});
            g->wait();
            g.reset();
        }
    });
}

// A goroutine selects on two channels that only a heap object holds; the
// sender fires one and drops the object (both last handles). The select's
// waiter on the other channel must keep that channel alive until it is
// unlinked.
TEST_P(Lifetime, SelectKeepsItsOtherChannelAlive) {
    struct pair_of_chans {
        goro::chan<int> a = goro::make_chan<int>();
        goro::chan<int> b = goro::make_chan<int>();
    };
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds; ++i) {
            auto* p = new pair_of_chans;
            goro::chan<int>* a = &p->a;
            goro::chan<int>* b = &p->b;
            goro::wait_group wg;
            wg.add(1);
            goro::go([a, b, &wg] {
                int got = 0;
                goro::select(goro::recv_case(*a, [&](std::optional<int> v) { got = *v; }),
                             goro::recv_case(*b, [&](std::optional<int> v) { got = *v; }));
                EXPECT_EQ(got, 7);
                wg.done();
            });
            // Wait until the selector is parked with a waiter on each.
            while (!has_receiver(p->a) || !has_receiver(p->b)) goro::yield();
            goro::chan<int> fire = (i % 2) ? p->a : p->b;
            delete p;  // the other channel's last handle
            fire.send(7);
            wg.wait();
        }
    });
}

namespace {

// Waits (at most 10 s) until n goroutines wait in a channel receive, each on
// its own channel, as goro::dump_goroutines lists them.
bool wait_for_receivers(int n) {
    for (int tries = 0; tries < 100000; ++tries) {
        std::ostringstream os;
        goro::dump_goroutines(os);
        const std::string s = os.str();
        int found = 0;
        for (auto at = s.find(", chan receive"); at != std::string::npos;
             at = s.find(", chan receive", at + 1))
            ++found;
        if (found >= n) return true;
        goro::sleep_for(100us);
    }
    return false;
}

}  // namespace

// A receiver blocked on a channel whose last handle is dropped while it
// waits: the channel stays alive for it, and shutdown unwinds it cleanly.
TEST_P(Lifetime, BlockedReceiverOutlivesTheLastHandle) {
    std::atomic<int> unwound{0};
    goro::run(procs(GetParam()), [&] {
        for (int i = 0; i < 100; ++i) {
            auto* ch = new goro::chan<int>(goro::make_chan<int>(i % 2));
            goro::chan<int>* raw = ch;
            goro::wait_group parked;
            parked.add(1);
            goro::go([raw, &parked, &unwound] {
                struct on_unwind {
                    std::atomic<int>& n;
                    ~on_unwind() { n.fetch_add(1); }
                } guard{unwound};
                parked.done();
                // Main drops the only handle while this waits: only the
                // blocked receive refers to the channel then (as with a
                // static channel destroyed at exit).
                raw->recv();
                ADD_FAILURE() << "received from a channel nobody can send on";
            });
            parked.wait();
            // Parked, not just about to be: a receiver that reached recv()
            // only after the delete would read a freed handle.
            ASSERT_TRUE(wait_for_receivers(i + 1)) << "receiver " << i << " never parked";
            delete ch;
        }
        goro::sleep_for(5ms);
    });
    EXPECT_EQ(unwound.load(), 100);
}

// Timers and contexts dropped right after the waiter returns.
TEST_P(Lifetime, TimerAndContextDroppedRightAfterTheWait) {
    goro::run(procs(GetParam()), [] {
        for (long i = 0; i < rounds / 20; ++i) {
            {
                goro::timer t(10us);
                t.c().recv();
            }
            {
                auto [ctx, cancel] = goro::with_timeout(goro::background(), 10us);
                ctx.done().recv();
                cancel();
            }
            {
                auto pair = goro::with_cancel(goro::background());
                goro::go([c = pair.second] { c(); });
                pair.first.done().recv();
            }
        }
    });
}

// A function-local static channel, with the runtime started lazily: at exit
// the static is destroyed before the exit hook unwinds the goroutine parked
// on it. The blocked receive keeps the core alive, so the unwind is clean.
TEST(LifetimeDeathTest, StaticChannelAtExit) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            // The runtime starts first (its exit hook is registered now), so
            // the statics below are destroyed before the hook runs.
            goro::wait_group started;
            started.add(1);
            goro::go([&started] { started.done(); });
            started.wait();
            static goro::chan<int> ch = goro::make_chan<int>();
            static goro::chan<int> buffered = goro::make_chan<int>(1);
            buffered.send(1);  // a full buffer: the sender below blocks
            goro::wait_group parked;
            parked.add(2);
            goro::go([&parked] {
                parked.done();
                ch.recv();
            });
            goro::go([&parked] {
                parked.done();
                buffered.send(2);
            });
            parked.wait();
            std::this_thread::sleep_for(20ms);  // let them park
            std::fprintf(stderr, "exiting\n");
            std::exit(0);
        },
        ::testing::ExitedWithCode(0), "exiting");
}
