// goro/detail/waiter.hpp — the one waiter record (Go's sudog) under every wait
// queue: channels, select, mutex, rw_mutex, cond, semaphore, wait_group, once.
//
// A waiter lives in its owner's frame and is linked into one wait_list while
// its owner is blocked. The rules, for every queue (see park.hpp):
//   - only the waker that claimed the waiter's parker, or the owner itself,
//     unlinks it; a waker whose claim fails leaves it in place (it belongs to
//     a select that fired elsewhere, or to shutdown) and looks further;
//   - the waker fills in the result (success, elem) before unlinking, and
//     readies the parker only after releasing the queue's lock (wake_list);
//   - after ready() the waker touches nothing of the waiter: the owner may
//     return and its frame be gone.
#pragma once

#include <cstdint>

#include "goro/detail/intrusive_list.hpp"
#include "goro/detail/park.hpp"

namespace goro::detail {

struct chan_core;

struct waiter {
    parker* p = nullptr;
    waiter* next = nullptr;
    waiter* prev = nullptr;
    bool queued = false;
    // Written by the waker that claimed p, read by the owner once awake.
    // Channels: a value moved (false: the channel was closed). Sync: granted
    // what it waited for (a mutex handed over, permits, a read lock).
    bool success = false;
    // Channel operations and select.
    bool is_send = false;
    bool writer = false;           // rw_mutex
    std::uint32_t case_index = 0;  // select: which case this waiter is
    // Channels: send: the value to move from; recv: storage to construct in.
    void* elem = nullptr;
    // Sync primitives (each uses one of the union's members).
    union {
        std::int64_t n = 0;     // semaphore: permits wanted; poller: the io_status
        std::uint64_t ticket;   // cond
        std::int64_t since_ns;  // mutex: when it began waiting
    };
    // semaphore::acquire(ctx): granted by a send on this channel instead of
    // ready() (the waiter then has no parker).
    chan_core* signal() const noexcept { return static_cast<chan_core*>(elem); }
};
// Kept small: select builds 16 of them on its stack whenever it parks.
static_assert(sizeof(waiter) <= 48, "waiter grew");

using wait_list = intrusive_list<waiter>;

// Claims w's parker and unlinks w from q (its wake_token set to w); false,
// leaving it queued, if another waker or the shutdown claimed it first.
inline bool take_claimed(wait_list& q, waiter* w) noexcept {
    if (!claim(w->p)) return false;
    q.remove(w);
    w->p->wake_token = w;
    return true;
}

// Unlinks and returns the first waiter of q whose parker this call claims
// (take_claimed); leaves the others queued. Null if none.
inline waiter* pop_claimed(wait_list& q) noexcept {
    for (waiter* w = q.head; w; w = w->next)
        if (take_claimed(q, w)) return w;
    return nullptr;
}

// Claimed, unlinked waiters to ready once the queue's lock is released, in
// the order they were added.
class wake_list {
  public:
    void push(waiter* w) noexcept {
        w->next = nullptr;
        if (tail_)
            tail_->next = w;
        else
            head_ = w;
        tail_ = w;
    }
    bool empty() const noexcept { return head_ == nullptr; }
    // Readies every waiter; each may be gone as soon as it is readied.
    void ready_all() noexcept {
        for (waiter* w = head_; w;) {
            waiter* next = w->next;  // read before ready()
            ready(w->p);
            w = next;
        }
        head_ = tail_ = nullptr;
    }

  private:
    waiter* head_ = nullptr;
    waiter* tail_ = nullptr;
};

}  // namespace goro::detail
