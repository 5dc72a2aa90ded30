// channels/chan_core.cpp — send, receive and close on the type-erased core.
// The invariants and lock order are in goro/detail/chan_core.hpp. As in Go's
// chan.go, a value goes straight from a sender to a waiting receiver (and a
// receiver that empties a full buffer pulls the first blocked sender's value
// into it), so a blocked peer is never left behind a half-done transfer.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "channels/chan_check.hpp"
#include "diagnostics/assert.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/errors.hpp"

namespace goro::detail {

chan_core::chan_core(const elem_ops* o, std::size_t capacity)
    : elem_size(static_cast<std::uint32_t>(o->size)), cap(capacity), ops(o) {
    // Go: "makechan: size out of range". A negative int passed as the
    // capacity arrives here as a huge size_t.
    if (cap > static_cast<std::size_t>(PTRDIFF_MAX) / (ops->size ? ops->size : 1))
        throw misuse_error("goro::make_chan: capacity out of range (" + std::to_string(cap) +
                           " elements)");
    if (cap > 0)
        buf = static_cast<unsigned char*>(
            ::operator new(cap * ops->size, std::align_val_t(ops->align)));
}

chan_core::~chan_core() {
    for (std::size_t i = 0; i < count; ++i) ops->destroy(slot(i));
    if (buf) ::operator delete(buf, std::align_val_t(ops->align));
}

#if defined(GORO_ASSERTS)
void check_chan_locked(chan_core* c) noexcept {
    GORO_ASSERT(c->count <= c->cap, "chan: more values buffered than its capacity");
    GORO_ASSERT(c->cap == 0 ? c->head == 0 : c->head < c->cap, "chan: buffer head out of range");
    // Waiters whose parker can still be claimed: receivers only while the
    // buffer is empty, senders only while it is full, none once closed.
    auto has_claimable = [](const wait_list& q) {
        int looked = 0;
        for (const waiter* w = q.head; w && looked < 16; w = w->next, ++looked)
            if (!(w->p->word.load(std::memory_order_relaxed) & park_bits::claimed)) return true;
        return false;
    };
    if (has_claimable(c->recvq))
        GORO_ASSERT(c->count == 0 && !c->closed, "chan: a receiver waits while values are ready");
    if (has_claimable(c->sendq))
        GORO_ASSERT(c->count == c->cap && !c->closed, "chan: a sender waits while there is room");
}
#endif

chan_ref make_chan_core(const elem_ops* ops, std::size_t capacity) {
    return chan_ref(new chan_core(ops, capacity));
}

void release_chan_ref(chan_core* c) noexcept {
    // This handle's uses, before the free by whoever drops the last (TSan;
    // the free follows a core_scope, an acquire of c).
    san::tsan_release(c);
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (c->on_unreferenced) c->on_unreferenced(c);  // a timer's: stop it (time/timer.cpp)
    bool free_now;
    {
        core_scope lk(c);
        free_now = c->recvq.empty() && c->sendq.empty();
        if (!free_now) c->orphaned = true;  // the last waiter to leave frees it
    }
    if (free_now) delete c;
}

namespace {

void unlock_core(void* c) GORO_NO_THREAD_SAFETY_ANALYSIS {
    unlock_checked(static_cast<chan_core*>(c));
}

// Parks on c (locked) with waiter w queued in q; returns with c unlocked.
// Woken normally, the waker has unlinked w and c is not touched again; at
// shutdown w is still queued (nobody else could claim it), which keeps c
// alive until w is unlinked here.
void park_on(chan_core* c, wait_list& q, waiter& w, wait_reason r)
    GORO_RELEASE(c->mu) GORO_NO_THREAD_SAFETY_ANALYSIS {
    q.push_back(&w);
    begin_park(w.p);
    // park() releases c (its `object`) for TSan before the switch: the
    // unlock runs on the worker's fiber (sanitizers/hooks.hpp).
    if (park(r, &unlock_core, c, park_mode::unwinds, c) == wake::unwind) {
        bool free_core;
        {
            core_scope lk(c);
            q.remove(&w);
            free_core = orphan_drained_locked(c);
        }
        if (free_core) delete c;
        throw_unwind();
    }
}

}  // namespace

[[noreturn]] void block_forever(wait_reason r) {
    parker* p = current_parker();
    begin_park(p);
    park(r, nullptr, nullptr);  // nobody can claim p but shutdown
    throw_unwind();
}

bool send_locked(chan_core* c, void* value, waiter** wake) noexcept GORO_REQUIRES(c->mu) {
    if (waiter* r = pop_claimed(c->recvq)) {
        c->ops->move_construct(r->elem, value);
        r->success = true;
        *wake = r;
        return true;
    }
    if (c->count < c->cap) {
        c->ops->move_construct(c->slot(c->count), value);
        ++c->count;
        return true;
    }
    return false;
}

namespace {

// Moves the buffer's head into out.
void take_head(chan_core* c, void* out) noexcept GORO_REQUIRES(c->mu) {
    void* h = c->slot(0);
    c->ops->move_construct(out, h);
    c->ops->destroy(h);
    if (++c->head == c->cap) c->head = 0;
}

}  // namespace

bool recv_locked(chan_core* c, void* out, waiter** wake, bool* received) noexcept
    GORO_REQUIRES(c->mu) {
    if (waiter* s = pop_claimed(c->sendq)) {
        if (c->cap == 0) {
            c->ops->move_construct(out, s->elem);
        } else {
            // Full buffer: take its head, put the sender's value at its tail.
            take_head(c, out);
            c->ops->move_construct(c->slot(c->count - 1), s->elem);
        }
        s->success = true;
        *wake = s;
        *received = true;
        return true;
    }
    if (c->count > 0) {
        take_head(c, out);
        --c->count;
        *received = true;
        return true;
    }
    *received = false;
    return c->closed;
}

op_result chan_send(chan_core* c, void* value, bool block) {
    if (!c) {
        if (!block) return op_result::would_block;
        block_forever(wait_reason::chan_send_nil);
    }
    // Lock and unlock are two of the three contended atomics per item of MPMC
    // (docs/performance.md, fifth session): a lock-free slot claim was not tried.
    lock_core(c);
    if (c->closed) {
        unlock_checked(c);
        throw closed_channel_error("goro::chan::send: send on closed channel");
    }
    waiter* wake = nullptr;
    if (send_locked(c, value, &wake)) {
        unlock_checked(c);
        if (wake) ready(wake->p);
        return op_result::done;
    }
    if (!block) {
        unlock_checked(c);
        return op_result::would_block;
    }
    waiter w;
    w.p = current_parker();
    w.elem = value;
    w.is_send = true;
    park_on(c, c->sendq, w, wait_reason::chan_send);
    if (!w.success) throw closed_channel_error("goro::chan::send: channel closed while sending");
    return op_result::done;
}

op_result chan_recv(chan_core* c, void* out, bool block) {
    if (!c) {
        if (!block) return op_result::would_block;
        block_forever(wait_reason::chan_recv_nil);
    }
    lock_core(c);
    waiter* wake = nullptr;
    bool received = false;
    if (recv_locked(c, out, &wake, &received)) {
        unlock_checked(c);
        if (wake) ready(wake->p);
        return received ? op_result::done : op_result::closed;
    }
    if (!block) {
        unlock_checked(c);
        return op_result::would_block;
    }
    waiter w;
    w.p = current_parker();
    w.elem = out;
    park_on(c, c->recvq, w, wait_reason::chan_recv);
    return w.success ? op_result::done : op_result::closed;
}

void chan_close(chan_core* c) {
    if (!c) throw closed_channel_error("goro::chan::close: close of nil channel");
    wake_list woken;
    {
        core_scope lk(c);
        if (c->closed) throw closed_channel_error("goro::chan::close: close of closed channel");
        c->closed = true;
        for (wait_list* q : {&c->recvq, &c->sendq})
            while (waiter* w = pop_claimed(*q)) {
                w->success = false;
                woken.push(w);
            }
        check_chan_locked(c);
    }
    woken.ready_all();
}

std::size_t chan_size(chan_core* c) noexcept {
    if (!c || c->timer_chan) return 0;  // Go 1.23: len(t.C) is always 0
    core_scope lk(c);
    return c->count;
}

}  // namespace goro::detail
