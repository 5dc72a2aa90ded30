// goro/net.hpp — TCP and Unix-domain sockets whose blocking calls park the
// calling goroutine (Go's net package). A plain OS thread may use them too;
// it blocks.
//
//   goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
//   std::cout << "listening on " << ln.address() << "\n";
//   for (;;) {
//       goro::net::conn c = ln.accept();
//       goro::go([c = std::move(c)]() mutable {
//           char buf[4096];
//           while (std::size_t n = c.read(buf, sizeof buf)) c.write_all(buf, n);
//       });
//   }
//
// Networks: "tcp" (IPv4 or IPv6 by the address), "tcp4", "tcp6", "unix"
// (a stream socket at a path; a path starting with '@' is Linux's abstract
// namespace). Addresses: "host:port", "[v6-host]:port", ":port" (every
// interface when listening, the loopback when dialing, as Go); host is a
// numeric address or "localhost" (no DNS lookup here: resolve a name with
// goro::blocking(getaddrinfo) yourself). docs/net.md has the details.
//
// Errors are thrown as std::system_error: the errno of the failed call
// (std::generic_category: ECONNREFUSED, ECONNRESET, EPIPE, ...), or a
// goro::errc (goro_category): deadline_exceeded when the operation's
// deadline passed, closed when the socket was closed by this process while
// the call waited (or before it), and the context's error (canceled,
// deadline_exceeded) when a context-taking call's context is done. Misuse
// (an unknown network, a malformed address, an operation on a moved-from or
// default-constructed object) throws goro::misuse_error naming the call.
//
// Deadlines are Go's: set_read_deadline / set_write_deadline / set_deadline
// take an absolute time (clock::time_point::max(): none, the default); they
// apply to every later and every pending operation in that direction until
// changed; a deadline already past fails the next operation at once with
// errc::deadline_exceeded, even if data is waiting (as Go). Setting a
// deadline that has passed wakes the operations pending in that direction.
//
// close() may be called from any goroutine or thread while others are
// parked in read/write/accept on the same object: they wake with
// goro::errc::closed, and the descriptor is closed once they have left.
// Destroying a conn or listener closes it; destroying it while another
// goroutine is still inside one of its calls is a use after free, as for
// any C++ object.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstddef>
#include <string>
#include <string_view>

#include "goro/context.hpp"
#include "goro/detail/timer_node.hpp"

namespace goro::net {

namespace detail {
struct socket_state;  // src/net/socket.hpp
struct access;        // src/net/net.cpp: makes conns and listeners from states
}  // namespace detail

// A connected stream socket.
class conn {
  public:
    conn() noexcept = default;  // not a connection; operations throw misuse_error
    // Move-only: the moved-from conn holds no connection.
    conn(conn&& o) noexcept;
    conn& operator=(conn&& o) noexcept;
    conn(const conn&) = delete;
    conn& operator=(const conn&) = delete;
    ~conn();  // close()

    // Whether it holds a connection (it may have been closed since).
    explicit operator bool() const noexcept { return s_ != nullptr; }

    // Reads up to n bytes, waiting until at least one is available. Returns
    // 0 at end of stream (the peer shut down its writing side or closed),
    // or at once when n is 0.
    std::size_t read(void* buf, std::size_t n);
    std::size_t read(void* buf, std::size_t n, const context& ctx);
    // Reads exactly n bytes; at end of stream before n throws
    // std::system_error(goro::errc::unexpected_eof).
    void read_full(void* buf, std::size_t n);
    void read_full(void* buf, std::size_t n, const context& ctx);
    // Writes some of the n bytes (at least one), waiting for room; returns
    // how many. write_all writes all n or throws (EPIPE, ECONNRESET, a
    // deadline: then some bytes may have been sent).
    std::size_t write(const void* buf, std::size_t n);
    void write_all(const void* buf, std::size_t n);
    void write_all(const void* buf, std::size_t n, const context& ctx);
    void write_all(std::string_view s) { write_all(s.data(), s.size()); }

    // Go's SetDeadline: a read or write (blocked or later) fails with
    // errc::deadline_exceeded once t has passed; time_point::max() clears it.
    void set_deadline(clock::time_point t);  // both directions
    void set_read_deadline(clock::time_point t);
    void set_write_deadline(clock::time_point t);

    // Half-close: no more writes (the peer reads end of stream) / no more reads.
    void shutdown_write();
    void shutdown_read();
    // Closes the socket; wakes every goroutine parked on it with errc::closed.
    // Idempotent.
    void close() noexcept;

    // "127.0.0.1:5000", "[::1]:5000", or the unix path.
    std::string local_address() const;
    std::string remote_address() const;
    int native_handle() const noexcept;  // -1 when closed; stays non-blocking
    // TCP_NODELAY (on by default, as Go); nothing to do on a unix socket.
    void set_no_delay(bool on);

  private:
    friend struct detail::access;
    explicit conn(detail::socket_state* s) noexcept : s_(s) {}
    detail::socket_state* s_ = nullptr;
};

// A listening socket.
class listener {
  public:
    listener() noexcept = default;
    // Move-only: the moved-from listener holds no socket.
    listener(listener&& o) noexcept;
    listener& operator=(listener&& o) noexcept;
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
    ~listener();  // close()

    // Whether it holds a socket (it may have been closed since).
    explicit operator bool() const noexcept { return s_ != nullptr; }

    // Waits for the next connection. Throws errc::closed once closed. Out
    // of descriptors, throws std::system_error(EMFILE or ENFILE) and leaves
    // the connection queued: the server decides how to back off (Go's
    // net/http sleeps 5 ms, doubling up to 1 s; examples/echo_server.cpp).
    conn accept();
    conn accept(const context& ctx);
    void set_deadline(clock::time_point t);  // for accept
    void close() noexcept;                   // wakes a parked accept; idempotent
    // The bound address with the real port ("127.0.0.1:43817"), or the path.
    std::string address() const;
    int native_handle() const noexcept;

  private:
    friend struct detail::access;
    explicit listener(detail::socket_state* s) noexcept : s_(s) {}
    detail::socket_state* s_ = nullptr;
};

// Binds and listens (SO_REUSEADDR for TCP; a unix path must not exist, and
// closing the listener removes it, as Go). "tcp" with no host (":80") or
// "[::]" listens on IPv4 and IPv6 at once when the machine has IPv6.
// backlog: listen(2)'s, clamped by the kernel's somaxconn.
listener listen(std::string_view network, std::string_view address, int backlog = 4096);

// Connects, parking until connected, the context is done, or refused
// (ECONNREFUSED). With a timeout: errc::deadline_exceeded once it passes
// (at once if it is zero or negative; duration::max(): none). A unix socket
// whose listener's queue is full fails with EAGAIN at once (as Go).
conn dial(std::string_view network, std::string_view address, const context& ctx);
conn dial(std::string_view network, std::string_view address,
          clock::duration timeout = clock::duration::max());

}  // namespace goro::net
