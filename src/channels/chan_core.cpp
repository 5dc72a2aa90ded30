// channels/chan_core.cpp — send, receive and close on the type-erased core.
// The invariants and lock order are in goro/detail/chan_core.hpp. As in Go's
// chan.go, a value goes straight from a sender to a waiting receiver (and a
// receiver that empties a full buffer pulls the first blocked sender's value
// into it), so a blocked peer is never left behind a half-done transfer.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "goro/detail/chan_core.hpp"
#include "goro/errors.hpp"

namespace goro::detail {

chan_waiter* wait_queue::pop_claimed() noexcept {
    while (chan_waiter* w = head) {
        remove(w);
        if (claim(w->p)) {
            w->p->wake_token = w;
            return w;
        }
    }
    return nullptr;
}

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

namespace {

void unlock_core(void* c) {
    static_cast<chan_core*>(c)->mu.unlock();
}

// Parks on c (locked) with waiter w queued in q; returns with c unlocked.
void park_on(chan_core* c, wait_queue& q, chan_waiter& w, wait_reason r) {
    q.push(&w);
    begin_park(w.p);
    if (park(r, &unlock_core, c) == wake::unwind) {
        {
            std::lock_guard lk(c->mu);
            q.remove(&w);
        }
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

bool send_locked(chan_core* c, void* value, chan_waiter** wake) noexcept {
    if (chan_waiter* r = c->recvq.pop_claimed()) {
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
void take_head(chan_core* c, void* out) noexcept {
    void* h = c->slot(0);
    c->ops->move_construct(out, h);
    c->ops->destroy(h);
    if (++c->head == c->cap) c->head = 0;
}

}  // namespace

bool recv_locked(chan_core* c, void* out, chan_waiter** wake, bool* received) noexcept {
    if (chan_waiter* s = c->sendq.pop_claimed()) {
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
    c->mu.lock();
    if (c->closed) {
        c->mu.unlock();
        throw closed_channel_error("goro::chan::send: send on closed channel");
    }
    chan_waiter* wake = nullptr;
    if (send_locked(c, value, &wake)) {
        c->mu.unlock();
        if (wake) ready(wake->p);
        return op_result::done;
    }
    if (!block) {
        c->mu.unlock();
        return op_result::would_block;
    }
    chan_waiter w;
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
    c->mu.lock();
    chan_waiter* wake = nullptr;
    bool received = false;
    if (recv_locked(c, out, &wake, &received)) {
        c->mu.unlock();
        if (wake) ready(wake->p);
        return received ? op_result::done : op_result::closed;
    }
    if (!block) {
        c->mu.unlock();
        return op_result::would_block;
    }
    chan_waiter w;
    w.p = current_parker();
    w.elem = out;
    park_on(c, c->recvq, w, wait_reason::chan_recv);
    return w.success ? op_result::done : op_result::closed;
}

void chan_close(chan_core* c) {
    if (!c) throw closed_channel_error("goro::chan::close: close of nil channel");
    chan_waiter* wake = nullptr;  // claimed waiters, linked through next
    {
        std::lock_guard lk(c->mu);
        if (c->closed) throw closed_channel_error("goro::chan::close: close of closed channel");
        c->closed = true;
        for (wait_queue* q : {&c->recvq, &c->sendq})
            while (chan_waiter* w = q->pop_claimed()) {
                w->success = false;
                w->next = wake;
                wake = w;
            }
    }
    while (wake) {
        chan_waiter* next = wake->next;  // read before ready(): the waiter may vanish
        ready(wake->p);
        wake = next;
    }
}

std::size_t chan_size(chan_core* c) noexcept {
    if (!c || c->timer_chan) return 0;  // Go 1.23: len(t.C) is always 0
    std::lock_guard lk(c->mu);
    return c->count;
}

}  // namespace goro::detail
