// goro/errors.hpp — goro's error codes and misuse exceptions.
//
// Misuse (closing a closed channel, a negative wait_group counter, unlocking an
// unlocked mutex, ...) throws an exception derived from std::logic_error whose
// what() names the misused call. Outcomes that are part of normal operation —
// a context cancelled or past its deadline — are std::error_codes in the
// "goro" category.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <stdexcept>
#include <string>
#include <system_error>

namespace goro {

// goro's error codes (std::error_code of goro_category()).
enum class errc {
    canceled = 1,  // context.Canceled
    // context.DeadlineExceeded; also an I/O deadline (os.ErrDeadlineExceeded)
    deadline_exceeded = 2,
    closed = 3,          // net.ErrClosed: the descriptor was closed while waiting
    unexpected_eof = 4,  // io.ErrUnexpectedEOF: the stream ended inside a read_full
};

// The "goro" error category, and errc as an error_code of it.
const std::error_category& goro_category() noexcept;

// errc as a std::error_code (found by ADL: `ec == goro::errc::canceled`).
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), goro_category()};
}

// Thrown through a goroutine's stack when it must end without finishing:
// at shutdown (run() returning unwinds the goroutines still blocked, each at
// its next blocking call), so that its destructors run. Deliberately not a
// std::exception: `catch (const std::exception&)` lets it pass. Code that
// catches everything must rethrow it:
//
//   try { work(); }
//   catch (const goro::goroutine_exit&) { throw; }
//   catch (...) { log_and_retry(); }
//
// A goroutine that swallows it anyway is unwound again at its next blocking
// call; if it keeps swallowing it while nothing else is left to finish
// (0.5 s without any goroutine ending), shutdown reports it on stderr by id
// and creation site and abandons it (never resumed, its stack leaked) so
// that run() returns.
struct goroutine_exit {};

// Thrown by run() (options::detect_deadlock) and goro::testing::bubble when
// every goroutine is blocked for good; what() is "goro: all goroutines are
// asleep - deadlock!" followed by the goroutine dump taken at detection.
class deadlock_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Base of every misuse error goro throws.
class misuse_error : public std::logic_error {
  public:
    using std::logic_error::logic_error;
};

// Send on a closed channel, close of a closed or nil channel.
class closed_channel_error : public misuse_error {
  public:
    using misuse_error::misuse_error;
};

// wait_group counter below zero, semaphore released beyond what was acquired.
class negative_counter_error : public misuse_error {
  public:
    using misuse_error::misuse_error;
};

}  // namespace goro

template <>
struct std::is_error_code_enum<goro::errc> : std::true_type {};
