// runtime/exit.hpp — goro::exit (runtime.Goexit) and watching goroutine
// exits.
//
// goro::exit() throws exit_unwind, a goroutine_unwind (goro::goroutine_exit): the goroutine's
// stack unwinds exactly as shutdown unwinds a parked goroutine (destructors
// run; code that lets goroutine_unwind pass lets it pass), and
// goroutine_main ends the goroutine normally. run()'s main goroutine catches
// it to tell "main called goro::exit" from a return (runtime/lifecycle.cpp).
//
// Exits are watched (exit_watch != 0) while someone waits for the live count
// to fall: shutdown (exit_seq, futex-woken on every exit), and run() after
// its main goroutine called goro::exit (run()'s caller, parked, readied by
// the exit that leaves no goroutine). release_goroutine reads the word once
// per exit (seq_cst, as the live count it pairs with): either the exiter
// sees the bit, or the waiter, which sets the bit before it reads the live
// count, sees the exit.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/park.hpp"

namespace goro::detail {

struct exit_unwind : goroutine_unwind {};

namespace exit_watch_bits {
inline constexpr std::uint8_t shutdown = 1;
inline constexpr std::uint8_t main_exited = 2;
}  // namespace exit_watch_bits

extern std::atomic<std::uint8_t> exit_watch;

struct worker;
// The watched part of a goroutine's exit (release_goroutine, after the count).
void exit_watched() noexcept;

}  // namespace goro::detail
