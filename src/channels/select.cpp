// channels/select.cpp — select over several channel operations (Go's
// selectgo).
//
//  1. Shuffle a poll order (uniform choice among ready cases) and sort the
//     distinct channels by address (the global lock order: two selects over
//     the same channels never deadlock).
//  2. Poll the cases in poll order, each under its own channel's lock only;
//     the first ready one runs (the select takes effect there, at that
//     moment). Holding one lock at a time keeps a select over many channels
//     from blocking, and being blocked by, every sender on any of them.
//  3. Otherwise, with a default case, return -1.
//  4. Otherwise lock them all (address order) and poll again: a case may
//     have become ready since step 2. Still nothing: enqueue one waiter per
//     case, all pointing at the same parker, and park; the unlock of all
//     channels runs after the switch. The first waker to claim the parker
//     wins and records its waiter in wake_token.
//  5. On wake, lock all again and dequeue the waiters that did not fire.
// The unlock callback releases the channels in reverse address order and
// reads nothing of the select record after releasing the lowest one: the
// woken goroutine relocks starting from the lowest, so until then its frame
// (which holds the record) is alive.
#include <algorithm>
#include <memory>

#include "goro/detail/select_core.hpp"
#include "goro/errors.hpp"

namespace goro::detail {

namespace {

std::uint64_t next_random() noexcept {
    // Per-thread xorshift64*; the seed mixes the thread's address.
    thread_local std::uint64_t s = reinterpret_cast<std::uintptr_t>(&s) * 0x9E3779B97F4A7C15ULL | 1;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

struct lock_set {
    chan_core** cores;
    std::size_t n;
    void lock() noexcept {
        for (std::size_t i = 0; i < n; ++i) cores[i]->mu.lock();
    }
    void unlock() noexcept {
        for (std::size_t i = n; i-- > 0;) cores[i]->mu.unlock();
    }
};

void unlock_all(void* a) {
    auto* ls = static_cast<lock_set*>(a);
    std::size_t i = ls->n;
    chan_core** cores = ls->cores;
    while (i > 1) cores[--i]->mu.unlock();
    chan_core* lowest = cores[0];  // last read of the record
    lowest->mu.unlock();
}

// Tries op on its (locked) channel. Returns true when it ran; sets *wake to
// a claimed peer to ready after unlocking.
bool try_op(select_op& op, chan_waiter** wake) {
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
bool run_if_ready(select_op& op, Unlock&& unlock) {
    chan_waiter* wake = nullptr;
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

}  // namespace

std::ptrdiff_t select_impl(select_op* ops, std::size_t n, bool has_default) {
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
        std::swap(order[i - 1], order[next_random() % i]);
    std::sort(cores, cores + live);
    lock_set ls{cores, static_cast<std::size_t>(std::unique(cores, cores + live) - cores)};

    for (std::size_t k = 0; k < live; ++k) {  // step 2
        chan_core* c = ops[order[k]].core;
        auto unlock_one = [c] { c->mu.unlock(); };
        c->mu.lock();
        if (run_if_ready(ops[order[k]], unlock_one)) return order[k];
        unlock_one();
    }
    if (has_default) return -1;  // step 3

    ls.lock();  // step 4
    for (std::size_t k = 0; k < live; ++k)
        if (run_if_ready(ops[order[k]], [&ls] { ls.unlock(); })) return order[k];

    small_buffer<chan_waiter, 16> waiters_buf;
    chan_waiter* waiters = waiters_buf.get(n);
    parker* p = current_parker();
    begin_park(p);
    for (std::size_t k = 0; k < live; ++k) {
        std::uint32_t i = order[k];
        chan_waiter& w = waiters[i];
        w.p = p;
        w.elem = ops[i].elem;
        w.case_index = i;
        w.is_send = ops[i].is_send;
        (ops[i].is_send ? ops[i].core->sendq : ops[i].core->recvq).push(&w);
    }
    wake how = park(wait_reason::select, &unlock_all, &ls);

    auto* fired = static_cast<chan_waiter*>(p->wake_token);
    ls.lock();
    for (std::size_t k = 0; k < live; ++k) {
        std::uint32_t i = order[k];
        if (&waiters[i] == fired) continue;
        (ops[i].is_send ? ops[i].core->sendq : ops[i].core->recvq).remove(&waiters[i]);
    }
    ls.unlock();
    if (how == wake::unwind || !fired) throw_unwind();
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
