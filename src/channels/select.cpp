// channels/select.cpp — select over several channel operations (Go's
// selectgo).
//
//  1. Shuffle a poll order (uniform choice among ready cases) and sort the
//     distinct channels by address (the global lock order: two selects over
//     the same channels never deadlock).
//  2. Poll the cases in poll order, each under its own channel's lock only;
//     the first ready one runs (the select takes effect there, at that
//     moment). Holding one lock at a time keeps a select over many channels
//     from blocking, and being blocked by, every sender on any of them. A
//     case whose channel does not look ready, read without its lock
//     (may_be_ready), is not locked here: step 3 looks at it again. Eight
//     locks and unlocks saved per blocking 8-case select (docs/performance.md).
//  3. Otherwise lock them all (address order) and poll again: a case may
//     have become ready since step 2, and a case that was ready at every
//     moment of step 2 (a value moving between two channels) is ready now.
//     With a default case and still nothing ready, unlock and return -1:
//     the default is taken only at a moment when no case was ready.
//  4. Otherwise enqueue one waiter per case, all pointing at the same
//     parker, and park; the unlock of all channels runs after the switch.
//     The first waker to claim the parker wins, unlinks its waiter and
//     records it in wake_token; other wakers leave our waiters queued.
//  5. On wake, lock the channels that still hold one of our waiters (every
//     one but the fired waiter's; each is kept alive by that waiter, see
//     chan_core.hpp) and unlink them; free any channel orphaned meanwhile.
// The unlock callback releases the channels in reverse address order and
// reads nothing of the select record after releasing the lowest one. The
// woken goroutine relocks the lowest channel in step 5 — unless its only
// waiter there is the fired one, and then the waker needed that lock, which
// the callback releases last. Either way the frame (which holds the record)
// outlives the callback's last read.
#include <algorithm>
#include <memory>

#include "channels/chan_check.hpp"
#include "goro/detail/select_core.hpp"
#include "goro/errors.hpp"

namespace goro::detail {

extern std::atomic<bool> virtual_clock_on;
std::atomic<std::uint64_t> bubble_random_state{1};

namespace {

std::uint64_t xorshift(std::uint64_t& s) noexcept {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

std::uint64_t next_random() noexcept {
    // In a bubble (one worker): the bubble's seeded state, so that a run
    // repeats. Elsewhere per-thread xorshift64*, seeded by the thread's address.
    if (virtual_clock_on.load(std::memory_order_relaxed)) [[unlikely]] {
        std::uint64_t s = bubble_random_state.load(std::memory_order_relaxed);
        const std::uint64_t r = xorshift(s);
        bubble_random_state.store(s, std::memory_order_relaxed);
        return r;
    }
    // Constant-initialized (no guard on each use), seeded on first use: from
    // the state's address and a process-wide count of seeds, since threads
    // run one after another reuse a stack and TLS block (the same address:
    // each new thread's first select chose the same case).
    constinit thread_local std::uint64_t s = 0;
    if (s == 0) [[unlikely]] {
        static std::atomic<std::uint64_t> seeds{0};
        const std::uint64_t k = seeds.fetch_add(1, std::memory_order_relaxed) + 1;
        std::uint64_t z = (reinterpret_cast<std::uintptr_t>(&s) ^ (k * 0xBF58476D1CE4E5B9ULL)) *
                          0x9E3779B97F4A7C15ULL;
        z ^= z >> 31;
        s = z | 1;
    }
    return xorshift(s);
}

// A uniform index below n from a random word, without a division (a 64-bit
// division costs tens of cycles, seven of them per 8-case select): the
// high half of the word scaled to [0, n) (Lemire's multiply-shift; the bias
// is below n / 2^32).
std::uint32_t below(std::uint64_t r, std::size_t n) noexcept {
    return static_cast<std::uint32_t>(((r >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

struct lock_set {
    chan_core** cores;  // distinct, in increasing address order
    std::size_t n;
    void lock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
        for (std::size_t i = 0; i < n; ++i) lock_core(cores[i]);
    }
    void unlock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
        for (std::size_t i = n; i-- > 0;) unlock_checked(cores[i]);
    }
};

void unlock_all(void* a) GORO_NO_THREAD_SAFETY_ANALYSIS {
    auto* ls = static_cast<lock_set*>(a);
    std::size_t i = ls->n;
    chan_core** cores = ls->cores;
    while (i > 1) unlock_checked(cores[--i]);
    chan_core* lowest = cores[0];  // last read of the record
    unlock_checked(lowest);
}

// Whether op's case may be ready, read without its channel's lock: the
// fields change only under it (relaxed, chan_core.hpp), so the answer is
// the channel's state of a moment ago — a hint, never acted on unlocked.
bool may_be_ready(const select_op& op) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    const chan_core* c = op.core;
    if (c->closed) return true;
    if (op.is_send) return !c->recvq.empty() || c->count < c->cap;
    return c->count > 0 || !c->sendq.empty();
}

// Tries op on its (locked) channel. Returns true when it ran; sets *wake to
// a claimed peer to ready after unlocking.
bool try_op(select_op& op, waiter** wake) GORO_NO_THREAD_SAFETY_ANALYSIS {
    if (op.is_send) {
        if (op.core->closed) throw closed_channel_error("goro::select: send on closed channel");
        return send_locked(op.core, op.elem, wake);
    }
    return recv_locked(op.core, op.elem, wake, &op.received);
}

// Runs op if it is ready, with its channel locked (alone, or with the rest:
// `unlock` releases whatever is held). When it runs, or throws, releases the
// locks first and then readies the claimed peer; when not ready, returns
// false with the locks still held.
template <class Unlock>
bool run_if_ready(select_op& op, Unlock&& unlock) GORO_NO_THREAD_SAFETY_ANALYSIS {
    waiter* wake = nullptr;
    bool ran;
    try {
        ran = try_op(op, &wake);
    } catch (...) {
        unlock();
        throw;
    }
    if (!ran) return false;
    unlock();
    if (wake) ready(wake->p);
    return true;
}

template <class T, std::size_t N>
struct small_buffer {
    T local[N];
    std::unique_ptr<T[]> heap;
    T* get(std::size_t n) {
        if (n <= N) return local;
        heap = std::make_unique<T[]>(n);
        return heap.get();
    }
};

wait_list& queue_of(const select_op& op) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    return op.is_send ? op.core->sendq : op.core->recvq;
}

// Step 5: unlinks every waiter but `fired`, locking only the channels that
// still hold one of them. Frees channels that were orphaned meanwhile.
void dequeue_rest(select_op* ops, waiter* waiters, const std::uint32_t* order, std::size_t live,
                  const waiter* fired, const lock_set& all) GORO_NO_THREAD_SAFETY_ANALYSIS {
    small_buffer<chan_core*, 16> held_buf;
    chan_core** held = held_buf.get(all.n);
    std::size_t nheld = 0;
    auto ours = [&](chan_core* c) {  // still holds one of our waiters
        for (std::size_t k = 0; k < live; ++k) {
            std::uint32_t i = order[k];
            if (ops[i].core == c && &waiters[i] != fired) return true;
        }
        return false;
    };
    if (all.n == live) {
        // The usual select, each case on its own channel: every channel but
        // the fired waiter's holds one waiter of ours (address order kept).
        const chan_core* gone = fired ? ops[fired->case_index].core : nullptr;
        for (std::size_t j = 0; j < all.n; ++j)
            if (all.cores[j] != gone) held[nheld++] = all.cores[j];
    } else if (live <= 16) {  // a few cases: a linear look is cheapest
        for (std::size_t j = 0; j < all.n; ++j)
            if (ours(all.cores[j])) held[nheld++] = all.cores[j];  // stays in address order
    } else {
        small_buffer<bool, 16> mark_buf;
        bool* mark = mark_buf.get(all.n);
        std::fill(mark, mark + all.n, false);
        for (std::size_t k = 0; k < live; ++k) {
            std::uint32_t i = order[k];
            if (&waiters[i] == fired) continue;
            mark[std::lower_bound(all.cores, all.cores + all.n, ops[i].core) - all.cores] = true;
        }
        for (std::size_t j = 0; j < all.n; ++j)
            if (mark[j]) held[nheld++] = all.cores[j];
    }
    lock_set ls{held, nheld};
    ls.lock();
    for (std::size_t k = 0; k < live; ++k) {
        std::uint32_t i = order[k];
        if (&waiters[i] != fired) queue_of(ops[i]).remove(&waiters[i]);
    }
    small_buffer<chan_core*, 16> drained_buf;
    chan_core** drained = drained_buf.get(nheld);
    std::size_t ndrained = 0;
    for (std::size_t j = 0; j < nheld; ++j)
        if (orphan_drained_locked(held[j])) drained[ndrained++] = held[j];
    ls.unlock();
    for (std::size_t j = 0; j < ndrained; ++j) delete drained[j];
}

}  // namespace

// The lock set is dynamic (channels in address order): beyond the analysis.
std::ptrdiff_t select_impl(select_op* ops, std::size_t n,
                           bool has_default) GORO_NO_THREAD_SAFETY_ANALYSIS {
    small_buffer<std::uint32_t, 16> order_buf;
    small_buffer<chan_core*, 16> cores_buf;
    std::uint32_t* order = order_buf.get(n);
    chan_core** cores = cores_buf.get(n);

    std::size_t live = 0;  // cases on non-nil channels
    for (std::size_t i = 0; i < n; ++i) {
        if (!ops[i].core) continue;
        order[live] = static_cast<std::uint32_t>(i);
        cores[live] = ops[i].core;
        ++live;
    }
    if (live == 0) {
        if (has_default) return -1;
        block_forever(n == 0 ? wait_reason::select_no_cases : wait_reason::select);
    }
    for (std::size_t i = live; i > 1; --i)  // Fisher-Yates
        std::swap(order[i - 1], order[below(next_random(), i)]);
    std::sort(cores, cores + live);
    lock_set ls{cores, static_cast<std::size_t>(std::unique(cores, cores + live) - cores)};

    for (std::size_t k = 0; k < live; ++k) {  // step 2
        if (!may_be_ready(ops[order[k]])) continue;
        chan_core* c = ops[order[k]].core;
        auto unlock_one = [c]() GORO_NO_THREAD_SAFETY_ANALYSIS { unlock_checked(c); };
        lock_core(c);
        if (run_if_ready(ops[order[k]], unlock_one)) return order[k];
        unlock_one();
    }

    ls.lock();  // step 3
    for (std::size_t k = 0; k < live; ++k)
        if (run_if_ready(ops[order[k]], [&ls] { ls.unlock(); })) return order[k];
    if (has_default) {
        ls.unlock();
        return -1;
    }

    small_buffer<waiter, 16> waiters_buf;  // step 4
    waiter* waiters = waiters_buf.get(n);
    parker* p = current_parker();
    begin_park(p);
    for (std::size_t k = 0; k < live; ++k) {
        std::uint32_t i = order[k];
        waiter& w = waiters[i];
        w.p = p;
        w.elem = ops[i].elem;
        w.case_index = i;
        w.is_send = ops[i].is_send;
        queue_of(ops[i]).push_back(&w);
    }
    // The unlocks run on the worker's fiber: release the cores as this
    // goroutine (TSan: sanitizers/hooks.hpp).
    for (std::size_t j = 0; j < ls.n; ++j) san::tsan_release(ls.cores[j]);
    wake how = park(wait_reason::select, &unlock_all, &ls);

    auto* fired = how == wake::unwind ? nullptr : static_cast<waiter*>(p->wake_token);
    dequeue_rest(ops, waiters, order, live, fired, ls);  // step 5
    if (!fired) throw_unwind();
    std::uint32_t i = fired->case_index;
    if (ops[i].is_send) {
        if (!fired->success)
            throw closed_channel_error("goro::select: channel closed while sending");
    } else {
        ops[i].received = fired->success;
    }
    return i;
}

}  // namespace goro::detail
