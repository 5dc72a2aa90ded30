// net/socket.hpp — socket_state, the shared core of a goro::net::conn and
// listener: the descriptor (non-blocking, close-on-exec), its poll_desc
// (registered once, edge-triggered), its addresses, and the count of
// operations in flight that decides when the descriptor may be closed.
//
// Every operation is: try the system call; on EAGAIN wait on the poller for
// that direction; retry (readiness is a hint). A deadline already past fails
// it before the call (poll_desc::prepare), as Go.
//
// Closing (Go's fdMutex, reduced to a count). `word_`: bit 0 is `closed`,
// the rest counts references, one per operation in flight (read, write,
// accept, shutdown, set_deadline, ...) plus one held by close() while it
// wakes the waiters:
//
//   an operation                              | close()
//   1. CAS: closed -> throw errc::closed;     | 1. CAS: closed -> return (idempotent);
//      else count + 1                         |    else set closed and count + 1
//   2. system calls, waits on pd (a wait that | 2. pd->evict(): pd.closing := true and
//      starts after close's step 2 returns    |    every parked waiter wakes with closed
//      closed at once: pd.closing)            |
//   3. count - 1                              | 3. count - 1
//
// Whoever takes the count to zero with `closed` set destroys: poller::close
// (pd back to the pool), unlink a unix listener's path, ::close(fd).
//
// Invariants: once `closed` is set the count only falls (step 1 never adds
// to a closed word), so "closed and zero" happens once and exactly one
// thread destroys. The fd is never closed while an operation is between its
// steps 1 and 3, so no read() or accept4() can land on the number after the
// kernel gave it to another file; pd returns to the pool only then, so no
// wait lands on a poll_desc reopened for another descriptor. An operation's
// step 3 is its last touch of the state unless it destroys, and a destroyer
// is still inside its call (the owner deletes the state only once every
// call has returned: the lifetime rule of goro/net.hpp).
//
// Lock order: deadline_mu -> pd.mu -> timer heap. deadline_mu is a
// std::mutex held only across poll_desc::set_deadline (which never parks):
// it serializes set_deadline calls on one socket, because timer_start
// writes the deadline timer's node.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "goro/context.hpp"
#include "net/address.hpp"
#include "net/poller.hpp"

namespace goro::net::detail {

using goro::detail::io_dir;
using goro::detail::io_status;

// The calling thread's errno, read afresh. glibc declares __errno_location
// const, so a compiler may compute errno's address once in a function and
// read it again after a park, when the goroutine may be running on another
// thread (clang hoists it out of the retry loop below): every errno read in
// goro::net goes through this out-of-line call instead.
int last_errno() noexcept;
[[noreturn]] void throw_errno(int e, const char* call);
[[noreturn]] void throw_status(io_status st, const char* call);
[[noreturn]] void throw_empty(const char* call);

// How one operation waits: always under the socket's own deadlines; a
// context (the ctx overloads) or a deadline of its own (dial's timeout)
// adds to them. A context's cancellation reaches a parked wait through an
// io_cancel shared with a context after-func, registered at the first wait
// and stopped when the operation ends.
class wait_scope {
  public:
    explicit wait_scope(clock::time_point until = clock::time_point::max()) : until_(until) {}
    // Throws the context's error at once if it is done.
    wait_scope(const context& ctx, const char* call);
    ~wait_scope();
    wait_scope(const wait_scope&) = delete;
    wait_scope& operator=(const wait_scope&) = delete;

    // Waits for readiness in d; throws deadline_exceeded, closed, or the
    // context's error.
    void wait(goro::detail::poll_desc* pd, io_dir d, const char* call);
    clock::time_point until() const noexcept { return until_; }

  private:
    const context* ctx_ = nullptr;
    clock::time_point until_;
    std::shared_ptr<goro::detail::io_cancel> cancel_;
    after_func_stop stop_;
};

struct socket_state {
    socket_state(int fd_, network net_) noexcept : fd(fd_), net(net_) {}
    socket_state(const socket_state&) = delete;
    socket_state& operator=(const socket_state&) = delete;

    // Registers fd with the poller and returns its state; closes fd and
    // rethrows if the poller refuses it.
    static socket_state* open(int fd, network net);

    const int fd;
    const network net;
    goro::detail::poll_desc* pd = nullptr;  // set by open, constant after
    sock_address local, remote;             // set before the state is shared
    std::string unlink_path;                // a unix listener's path, removed at close

    // Step 1 and 3 of the protocol above. enter throws errc::closed.
    void enter(const char* call);
    void leave() noexcept;
    void close() noexcept;
    bool closed() const noexcept { return word_.load(std::memory_order_acquire) & closed_bit; }

    // The retry loop: `syscall` returns >= 0, or -1 with errno (which it
    // must not read itself; see last_errno). EINTR retries, EAGAIN waits in
    // d, anything else is thrown. Requires enter.
    template <class F>
    std::size_t io(io_dir d, wait_scope& w, const char* call, F&& syscall) {
        if (io_status st = pd->prepare(d); st != io_status::ready) throw_status(st, call);
        for (;;) {
            const ssize_t r = syscall();
            if (r >= 0) return static_cast<std::size_t>(r);
            const int e = last_errno();
            if (e == EINTR) continue;
            if (e != EAGAIN && e != EWOULDBLOCK) throw_errno(e, call);
            w.wait(pd, d, call);
        }
    }

    void set_deadline(io_dir d, clock::time_point t);  // requires enter

  private:
    void destroy() noexcept;

    static constexpr std::uint64_t closed_bit = 1, one_ref = 2;
    std::atomic<std::uint64_t> word_{0};
    std::mutex deadline_mu_;
};

// An operation in flight: enter() on construction (after checking that the
// object is not empty), leave() on destruction.
class op_scope {
  public:
    op_scope(socket_state* s, const char* call) : s_(s) {
        if (!s) throw_empty(call);
        s->enter(call);
    }
    ~op_scope() { s_->leave(); }
    op_scope(const op_scope&) = delete;
    op_scope& operator=(const op_scope&) = delete;

  private:
    socket_state* s_;
};

}  // namespace goro::net::detail
