// goro/detail/chan_core.hpp — the type-erased channel under goro::chan<T>.
//
// One core per channel: a lock, a ring buffer of `cap` element slots, a
// closed flag, and FIFO queues of blocked receivers (recvq) and senders
// (sendq). Element values are moved by an elem_ops table, so the waiting
// logic exists once for every T and select can mix channels of different T.
//
// Invariants (under mu):
//   - count <= cap; slots [head, head + count) (mod cap) hold live values.
//   - sendq non-empty => the buffer is full (count == cap);
//     recvq non-empty => the buffer is empty. At most one of them is
//     non-empty, except transiently for one select that waits to send and to
//     receive on the same channel.
//   - closed => sendq is empty (close wakes every waiter).
//   - A waiter is in a queue only while its owner is blocked on it; a waker
//     claims its parker (leaving it queued if that fails: a select that
//     fired elsewhere, or shutdown — its owner unlinks it), moves the value,
//     unlinks it, and readies the parker only after unlocking (waiter.hpp).
// Lifetime: handles (chan_ref) count references (a timer's channel counts
// only its users' handles: on_unreferenced below). A blocked operation holds
// only a raw pointer, so a queued waiter also keeps the core alive: when the
// last handle goes while waiters are queued (a static channel destroyed at
// exit, a select whose other channel fired and whose last handle another
// goroutine dropped), the core is marked orphaned instead of freed, and the
// owner that unlinks the last queued waiter frees it. Nobody can send, receive
// or close an orphaned channel (no handle is left), so its waiters only leave
// by themselves.
// Lock order: channel locks are taken in increasing core address (select);
// a single operation holds one. No other lock is taken under a channel lock
// (element moves run T's move constructor, which must not throw or block:
// chan<T> requires a noexcept move).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/park.hpp"
#include "goro/detail/relaxed.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "goro/detail/waiter.hpp"

namespace goro::detail {

struct elem_ops {
    void (*move_construct)(void* dst, void* src) noexcept;  // src stays alive (moved-from)
    void (*destroy)(void* p) noexcept;
    std::size_t size;
    std::size_t align;
};

template <class T>
inline constexpr elem_ops elem_ops_for{
    [](void* dst, void* src) noexcept {
        // A throwing move under a channel lock cannot be recovered from.
        ::new (dst) T(std::move(*static_cast<T*>(src)));
    },
    [](void* p) noexcept { static_cast<T*>(p)->~T(); },
    sizeof(T),
    alignof(T),
};

// Cache-line aligned, with everything an uncontended operation touches (the
// lock, the counters, the buffer pointer, the queue heads) in the first line.
struct alignas(64) chan_core {
    spin_mutex mu{lock_rank::chan};
    relaxed<bool> closed GORO_GUARDED_BY(mu){false};  // relaxed: select's peek (select.cpp)
    // A timer's or ticker's channel (set once, before the channel is shared):
    // it presents as unbuffered, as Go 1.23's do — len and cap read 0 — while
    // it holds the one fired, unreceived value that stop()/reset() take back.
    bool timer_chan = false;
    std::uint32_t elem_size;
    std::size_t cap;
    relaxed<std::size_t> count GORO_GUARDED_BY(mu){0};  // relaxed: select's peek
    std::size_t head GORO_GUARDED_BY(mu) = 0;
    unsigned char* buf = nullptr;
    const elem_ops* ops;
    wait_list recvq GORO_GUARDED_BY(mu);
    wait_list sendq GORO_GUARDED_BY(mu);
    // Handles to this core (chan_ref); the last one frees it or orphans it.
    alignas(64) std::atomic<std::int64_t> refs{1};
    bool orphaned GORO_GUARDED_BY(mu) = false;  // no handle left, waiters still queued
    // A timer's channel (set once, before the channel is shared): called
    // when the last handle goes, before the core is freed or orphaned, to
    // stop and release the timer behind it — nothing could receive its value
    // any more (Go 1.23 collects such a timer). `owner` is that timer's
    // state, kept alive by the core; the timer itself holds no reference.
    void (*on_unreferenced)(chan_core*) noexcept = nullptr;
    std::shared_ptr<void> owner;

    chan_core(const elem_ops* o, std::size_t capacity);
    ~chan_core();
    chan_core(const chan_core&) = delete;
    chan_core& operator=(const chan_core&) = delete;

    void* slot(std::size_t i) noexcept GORO_REQUIRES(mu) {
        std::size_t k = head + i;
        if (k >= cap) k -= cap;  // head < cap and i <= cap: no division
        return buf + k * elem_size;
    }
};

// Drops one handle's reference: frees the core, or orphans it if waiters
// are still queued (see Lifetime above).
void release_chan_ref(chan_core* c) noexcept;
// With c->mu held, after its caller unlinked its own waiters: true if the
// caller must free c once it has unlocked it (orphaned, nobody left).
inline bool orphan_drained_locked(const chan_core* c) noexcept GORO_REQUIRES(c->mu) {
    return c->orphaned && c->recvq.empty() && c->sendq.empty();
}

// A counted reference to a core: what every channel handle holds. Null is
// the nil channel.
class chan_ref {
  public:
    chan_ref() = default;
    // Adopts a reference already counted (make_chan_core's).
    explicit chan_ref(chan_core* c) noexcept : c_(c) {}
    chan_ref(const chan_ref& o) noexcept : c_(o.c_) {
        if (c_) c_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    chan_ref(chan_ref&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    chan_ref& operator=(chan_ref o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }
    ~chan_ref() {
        if (c_) release_chan_ref(c_);
    }
    chan_core* get() const noexcept { return c_; }
    chan_core* operator->() const noexcept { return c_; }
    explicit operator bool() const noexcept { return c_ != nullptr; }
    // Handles to the core (as shared_ptr::use_count; 0 for nil).
    long use_count() const noexcept {
        return c_ ? static_cast<long>(c_->refs.load(std::memory_order_relaxed)) : 0;
    }

  private:
    chan_core* c_ = nullptr;
};

// A new core with one reference. Throws misuse_error for a capacity out of range.
chan_ref make_chan_core(const elem_ops* ops, std::size_t capacity);

enum class op_result : std::uint8_t { done, would_block, closed };

// `value` points at a live T; it is moved from exactly when the result is
// done. Throws closed_channel_error on a closed channel. block = false never
// parks. A null core is a nil channel (blocks forever; never ready).
op_result chan_send(chan_core* c, void* value, bool block);
// The non-blocking halves, shared by chan_send/chan_recv and select; they
// require c->mu held and c open (send) and set *wake to a claimed peer to
// ready after unlocking. send: false when it would block. recv: false when
// it would block; else *received tells a value from "closed and drained".
bool send_locked(chan_core* c, void* value, waiter** wake) noexcept GORO_REQUIRES(c->mu);
bool recv_locked(chan_core* c, void* out, waiter** wake, bool* received) noexcept
    GORO_REQUIRES(c->mu);
// `out` is raw storage for a T; a T is constructed there exactly when the
// result is done.
op_result chan_recv(chan_core* c, void* out, bool block);
void chan_close(chan_core* c);
std::size_t chan_size(chan_core* c) noexcept;
// Blocks forever (until shutdown unwinds the caller).
[[noreturn]] void block_forever(wait_reason r);

}  // namespace goro::detail
