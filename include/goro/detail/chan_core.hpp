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
//     pops it, claims its parker (skipping it if that fails: a select that
//     fired elsewhere, or shutdown), moves the value, and readies the parker
//     only after unlocking.
// Lock order: channel locks are taken in increasing core address (select);
// a single operation holds one. No other lock is taken under a channel lock
// (element moves run T's move constructor, which must not block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/intrusive_list.hpp"
#include "goro/detail/park.hpp"
#include "goro/detail/spin_mutex.hpp"

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

struct chan_waiter {
    parker* p = nullptr;
    chan_waiter* next = nullptr;
    chan_waiter* prev = nullptr;
    // Sender: the value to move from (the sender keeps ownership; the taker
    // moves out of it). Receiver: raw storage to construct the value in.
    void* elem = nullptr;
    std::uint32_t case_index = 0;  // select: which case this waiter is
    bool success = false;          // set by the waker: value moved (false: closed)
    bool queued = false;
    bool is_send = false;
};

struct wait_queue : intrusive_list<chan_waiter> {
    // Pops waiters until one can be claimed; the claimed one's parker gets
    // wake_token = the waiter. Returns null when none can.
    chan_waiter* pop_claimed() noexcept;
    void push(chan_waiter* w) noexcept { push_back(w); }
};

// Cache-line aligned, with everything an uncontended operation touches (the
// lock, the counters, the buffer pointer, the queue heads) in the first line.
struct alignas(64) chan_core {
    spin_mutex mu;
    bool closed = false;
    // A timer's or ticker's channel (set once, before the channel is shared):
    // it presents as unbuffered, as Go 1.23's do — len and cap read 0 — while
    // it holds the one fired, unreceived value that stop()/reset() take back.
    bool timer_chan = false;
    std::uint32_t elem_size;
    std::size_t cap;
    std::size_t count = 0;
    std::size_t head = 0;
    unsigned char* buf = nullptr;
    const elem_ops* ops;
    wait_queue recvq, sendq;

    chan_core(const elem_ops* o, std::size_t capacity);
    ~chan_core();
    chan_core(const chan_core&) = delete;
    chan_core& operator=(const chan_core&) = delete;

    void* slot(std::size_t i) noexcept {
        std::size_t k = head + i;
        if (k >= cap) k -= cap;  // head < cap and i <= cap: no division
        return buf + k * elem_size;
    }
};

enum class op_result : std::uint8_t { done, would_block, closed };

// `value` points at a live T; it is moved from exactly when the result is
// done. Throws closed_channel_error on a closed channel. block = false never
// parks. A null core is a nil channel (blocks forever; never ready).
op_result chan_send(chan_core* c, void* value, bool block);
// The non-blocking halves, shared by chan_send/chan_recv and select; they
// require c->mu held and c open (send) and set *wake to a claimed peer to
// ready after unlocking. send: false when it would block. recv: false when
// it would block; else *received tells a value from "closed and drained".
bool send_locked(chan_core* c, void* value, chan_waiter** wake) noexcept;
bool recv_locked(chan_core* c, void* out, chan_waiter** wake, bool* received) noexcept;
// `out` is raw storage for a T; a T is constructed there exactly when the
// result is done.
op_result chan_recv(chan_core* c, void* out, bool block);
void chan_close(chan_core* c);
std::size_t chan_size(chan_core* c) noexcept;
// Blocks forever (until shutdown unwinds the caller).
[[noreturn]] void block_forever(wait_reason r);

}  // namespace goro::detail
