// goro/io.hpp — waiting for a descriptor, so that any non-blocking C or C++
// library (a database client, TLS, a resolver) can be driven from goroutines.
//
//   // fd is non-blocking (O_NONBLOCK)
//   for (;;) {
//       ssize_t n = ::read(fd, buf, size);
//       if (n >= 0) return n;
//       if (errno != EAGAIN) throw std::system_error(errno, std::generic_category());
//       if (auto ec = goro::wait_readable(fd, deadline)) return ec;  // timed out
//   }
//
// wait_readable / wait_writable return when the descriptor may be ready
// ({}), or with goro::errc::deadline_exceeded when the deadline passes (a
// deadline already past returns at once), goro::errc::canceled (or the
// context's error) when the context is done. Readiness is a hint: retry the
// operation, and wait again on EAGAIN. A goroutine parks ("IO wait" in
// goro::dump_goroutines) and frees its worker; a plain thread blocks.
// Several goroutines may wait on one descriptor at once (all of them are
// woken by readiness). Works on sockets, pipes, eventfds, terminals — what
// epoll accepts; a regular file is always reported ready, and so is a
// number that is not open (the I/O call then fails with EBADF).
// A goro::net conn's or listener's native_handle() may be waited on too: the
// wait shares the socket's own registration (and returns errc::closed when
// the socket is closed meanwhile).
// Requires: fd stays open while waited on (closing it does not wake the
// waiters; goro::net's connections do that for you).
// Caution with errno in such a loop: after a wait the goroutine may run on
// another thread, and glibc declares errno's accessor const, so a compiler
// may compute errno's address once and reuse it after the wait — reading
// another thread's errno (clang hoists it out of loops like the one
// above). Read errno through a function the compiler cannot see into (one
// defined in another file, noinline), as goro::net does.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <system_error>

#include "goro/context.hpp"
#include "goro/detail/timer_node.hpp"

namespace goro {

// Parks until fd is readable (writable), the deadline passes or ctx is done
// (see the top of this file); {} when ready, else why not.
std::error_code wait_readable(int fd, clock::time_point deadline = clock::time_point::max());
std::error_code wait_writable(int fd, clock::time_point deadline = clock::time_point::max());
std::error_code wait_readable(int fd, const context& ctx);
std::error_code wait_writable(int fd, const context& ctx);

}  // namespace goro
