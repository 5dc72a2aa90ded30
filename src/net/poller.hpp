// net/poller.hpp — the network poller: edge-triggered epoll integrated with
// the scheduler, as Go's netpoller.
//
// One epoll instance for the process (it outlives each run()'s scheduler),
// plus an eventfd to kick a worker out of epoll_wait. A descriptor that
// goroutines wait on has a poll_desc; per direction (read, write) it holds
// an edge not yet consumed (`ready`), the parked waiters, and a deadline with
// its timer.
//
// Waiting (poll_desc::wait), under pd.mu:
//   1. closing -> closed; an unconsumed edge -> consume it, ready; the
//      deadline passed -> timeout;
//   2. otherwise queue a waiter, count it in `waiting_`, and park (the unlock
//      after the switch releases pd.mu). The caller retries its I/O after a
//      `ready`, and waits again on EAGAIN: readiness is a hint, never a
//      promise (a stale edge or a spurious wake costs one retry).
// Delivery (an epoll event, a deadline timer, close, a context): lock pd.mu,
// claim and unlink the waiters with their result, or, for an edge with no
// waiter, set `ready`; unlock; ready them. A context's interrupt that finds
// no waiter (it came between two waits, or before the first) stays in its
// io_cancel, and every later wait with that io_cancel returns it at once.
//
// Closing (goro::net, socket.cpp): evict() sets `closing` and wakes every
// waiter with closed; waits that start afterwards return closed at once.
// The descriptor is handed back with poller::close only once no operation
// uses it any more, so a late wait never lands on a recycled poll_desc.
//
// Who calls epoll_wait: the idle worker that watches timers sleeps in it
// (bounded by the next timer deadline) whenever a goroutine waits on a
// descriptor, and a wake of that worker writes the eventfd (wake_slot,
// scheduler/idle.hpp); busy workers poll without blocking now and then
// (find_runnable), so readiness is never stuck behind CPU-bound goroutines.
//
// Lifetime: poll_descs are pooled and never freed, so an event that names a
// descriptor closed meanwhile touches valid memory; at worst it sets a stale
// `ready` on a reused one (one spurious retry).
// Lock order: pd.mu (lock_rank::poll_desc) -> timer heap; ready() after
// unlocking.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "goro/detail/spin_mutex.hpp"
#include "goro/detail/timer_node.hpp"
#include "goro/detail/waiter.hpp"

namespace goro::detail {

enum class io_dir : std::uint8_t { read = 0, write = 1 };

enum class io_status : std::uint8_t { ready, timeout, closed, canceled };

struct poll_desc {
    struct side {
        bool ready = false;    // an edge seen and not consumed
        bool expired = false;  // the deadline has passed
        clock::time_point deadline = clock::time_point::max();
        wait_list waiters;
        struct deadline_timer : timer_node {
            poll_desc* pd = nullptr;
            io_dir dir = io_dir::read;
        } timer;
    };

    spin_mutex mu{lock_rank::poll_desc};
    int fd = -1;
    bool closing = false;
    // Registered for both directions, edge-triggered, until close (sockets
    // of goro::net). Otherwise (wait_readable on any descriptor) armed
    // one-shot per wait, for the directions waited on.
    bool persistent = false;
    side sides[2];
    poll_desc* next_free = nullptr;

    side& of(io_dir d) noexcept { return sides[static_cast<int>(d)]; }

    // Waits for readiness in d (see the top of this file). Parks a
    // goroutine, blocks a plain thread. At shutdown unwinds the goroutine.
    // `until`: this wait's own deadline (besides the descriptor's);
    // `cancel`: where an interrupter finds this wait (io.cpp), or null.
    io_status wait(io_dir d, clock::time_point until = clock::time_point::max(),
                   struct io_cancel* cancel = nullptr);
    // Before an I/O call in d: closed if closing, timeout if d's deadline
    // has passed (then the call must not be tried, as Go), else ready.
    io_status prepare(io_dir d);
    // Sets d's deadline (time_point::max(): none); wakes its waiters with
    // timeout if it has passed. Requires: no concurrent set_deadline for d
    // (goro::net serializes them per socket).
    void set_deadline(io_dir d, clock::time_point t);
    // Wakes the waiters of d with `why` (a context was cancelled, say).
    void interrupt(io_dir d, io_status why);
    // Sets closing and wakes every waiter with closed; later waits return
    // closed at once. The descriptor stays registered until poller::close.
    void evict() noexcept;
};

// How a context's cancellation finds a wait on a descriptor: the waiter,
// guarded by pd->mu, null between waits. `fired` (also under pd->mu)
// remembers an interrupt that came while no wait was parked, so that the
// next wait returns `why` instead of parking past it.
struct io_cancel {
    poll_desc* pd = nullptr;
    waiter* w = nullptr;
    bool fired = false;
    io_status why = io_status::canceled;
};
// Wakes c's waiter with `why`, if it still waits; else records it in c.
void interrupt_wait(io_cancel& c, io_status why) noexcept;

class poller {
  public:
    static poller& instance();
    // The poller if one was ever made (a program that never waits on a
    // descriptor has none, and pays nothing), else null.
    static poller* if_active() noexcept;

    // A descriptor for fd: persistent registration (edge-triggered, both
    // directions) or one-shot. Throws std::system_error if epoll refuses.
    poll_desc* open(int fd, bool persistent);
    // Wakes every waiter with closed, deregisters, returns the descriptor to
    // the pool. fd itself is not closed. Requires: nobody uses pd any more
    // (a wait starting after this could find it reopened for another fd).
    void close(poll_desc* pd) noexcept;
    // The poll_desc of a plain descriptor, for wait_readable/wait_writable
    // (one per fd number; see io.cpp for how reuse of the number is handled).
    // For a goro::net socket's descriptor, the socket's own persistent
    // poll_desc: open(fd, true) puts it in the fd table (sending a one-shot
    // one left there for an earlier file back to the pool) and close takes
    // it out, so a one-shot arming never replaces a socket's registration.
    poll_desc* for_fd(int fd);

    // True while some goroutine or thread waits on a descriptor.
    bool has_waiters() const noexcept { return waiting_.load(std::memory_order_acquire) > 0; }
    // Collects ready events, waiting up to deadline (ns since the clock's
    // epoch; 0: do not block; no_deadline: until an event or a kick), and
    // readies their waiters. Returns how many parkers it readied. Only the
    // `sleeper` (the idle worker woken by kick()) consumes a kick; anyone
    // else leaves it for the sleeper.
    int poll(std::int64_t deadline, bool sleeper) noexcept;
    // Makes a poll() blocked in epoll_wait return.
    void kick() noexcept;
    // A non-blocking poll if nobody polled for `interval` (busy workers:
    // 100 us; the monitor: 10 ms).
    void poll_if_due(std::int64_t now, std::int64_t interval = 100'000) noexcept;

    void waiter_added() noexcept { waiting_.fetch_add(1, std::memory_order_acq_rel); }
    void waiter_removed() noexcept { waiting_.fetch_sub(1, std::memory_order_acq_rel); }
    bool arm_oneshot(poll_desc* pd) noexcept;  // requires pd->mu; false: cannot be armed

  private:
    poller();
    int epfd_ = -1;
    int kickfd_ = -1;
    std::atomic<std::int64_t> waiting_{0};
    alignas(64) std::atomic<std::int64_t> last_poll_{0};
    spin_mutex pool_mu_{lock_rank::poll_pool};
    poll_desc* free_ = nullptr;  // guarded by pool_mu_
};

}  // namespace goro::detail
