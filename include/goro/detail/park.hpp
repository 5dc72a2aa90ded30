// goro/detail/park.hpp — the one parking primitive under every blocking call.
//
// A *parker* is whatever blocks: a goroutine, or a plain OS thread that called a
// blocking goro function. Every channel, select, timer and sync primitive blocks
// through park() and wakes through claim() + ready(); nothing else sleeps.
//
// Protocol (one "park episode"):
//   blocked side                            waking side
//   1. p = current_parker()
//   2. lock the structure (channel, ...)
//   3. begin_park(p)        (a new episode, open)
//   4. publish waiter(s) pointing at p
//   5. park(reason, unlock, arg)            a. lock the structure, find a waiter
//      -- the switch away happens first,    b. claim(p) — exactly one waker wins
//         then unlock(arg) runs off the        per episode; a loser leaves the
//         parked stack, so no waker can        waiter where it is (only the
//         see p before it is really parked     winner or the owner unlinks it)
//      -- then the side switched in (the    c. fill in the waiter's result, unlink
//         worker's loop or the next            it, unlock
//         goroutine) marks the park
//         finished (parked bit, below)
//                                           d. ready(p)  (never under the lock)
//   6. park returns wake::normal, or wake::unwind when the runtime is shutting
//      down and unwinds parked goroutines: the caller removes its waiters (under
//      the lock) and calls throw_unwind().
//
// The park word (one atomic per parker) holds the episode number and five
// bits: `claimed` (a waker, or shutdown, owns this episode's wake-up),
// `parked` (the park has fully finished — its unlock callback has run — so
// shutdown may claim it to unwind it), `parked_waits` and `parked_exempt`
// (finished, but this park waits through shutdown instead of unwinding: see
// below), `parked_pinned` (finished, and only its own waker may ever claim
// it: shutdown neither unwinds nor abandons it). Wakers may
// claim an open episode at any time; shutdown only one whose parked bit is
// set, so it never readies a goroutine whose unlock callback (say, the timer
// insert of a sleep, with its node in the goroutine's frame) is still running.
// The episode number makes a stale compare-and-swap on a later episode fail.
//
// Parks that wait through shutdown: parks that ask for it (`parked_waits`:
// waits that the other goroutines' unwinding completes — wait_group::wait,
// whose goroutines' guards call done(); mutex, rw_mutex, semaphore and once,
// whose holders' RAII guards release them — and which may well be made in a
// destructor entered by a normal scope exit), and parks made while an
// exception is in flight on the goroutine (`parked_exempt`: a destructor
// running during unwinding, where a throw would call std::terminate). Shutdown does not unwind them
// at first; they are woken as usual. When nothing else is left to run, shutdown unwinds the
// `parked_waits` ones after all, and abandons the `parked_exempt` ones (reported, never resumed,
// stack leaked).
//
// Pinned parks (`park_mode::pinned`, bit `parked_pinned`): goro::blocking,
// whose function runs on another thread and writes its result into the
// parked goroutine's frame. Nothing can interrupt that function, so the
// park ends only when it has returned; shutdown waits for it (a goroutine
// left pinned also keeps shutdown from calling the others stuck), and the
// goroutine unwinds at its next blocking call. Pinned takes precedence over
// exempt.
//
// Invariants: a parker is readied at most once per episode (claim arbitrates);
// a waiter's memory belongs to the blocked side and is valid until ready();
// a waiter is unlinked only by the waker that claimed it or by its owner.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/errors.hpp"

namespace goro::detail {

enum class wait_reason : std::uint8_t {
    none,
    chan_send,
    chan_recv,
    chan_send_nil,
    chan_recv_nil,
    select,
    select_no_cases,
    sleep,
    wait_group,
    mutex,
    rw_mutex,
    cond,
    semaphore,
    once,
    errgroup,
    io_read,   // "IO wait": a descriptor to become readable
    io_write,  // "IO wait": a descriptor to become writable
    run,       // a plain thread waiting in goro::run
    blocking,  // goro::blocking: the function runs on the blocking pool
};

const char* to_string(wait_reason r) noexcept;

namespace park_bits {
inline constexpr std::uint64_t claimed = 1;
inline constexpr std::uint64_t parked = 2;
inline constexpr std::uint64_t parked_waits = 4;
inline constexpr std::uint64_t parked_exempt = 8;
inline constexpr std::uint64_t parked_pinned = 16;
inline constexpr std::uint64_t all = 31;  // the episode number is word / 32
}  // namespace park_bits

struct parker {
    // Episode number * 32 | park_bits. Starts claimed: nothing may wake a
    // parker that has not begun an episode.
    std::atomic<std::uint64_t> word{park_bits::claimed};
    // Set by the waker that won the claim; read by the parker after it wakes
    // (select uses it to learn which case fired).
    void* wake_token = nullptr;
    bool is_goroutine = false;
};

enum class wake : std::uint8_t { normal, unwind };

// Whether a park unwinds at shutdown (the default), waits through it (and
// may still be unwound or abandoned once nothing else can wake it), or is
// pinned: only its waker ends it, whatever shutdown does (see above).
enum class park_mode : std::uint8_t { unwinds, waits_through_shutdown, pinned };

// The parker of the caller: its goroutine's, or its thread's.
parker* current_parker() noexcept;

// Opens a new episode. Call it with the structure locked, before publishing
// waiters. Relaxed: wakers read the word after taking the same lock.
inline void begin_park(parker* p) noexcept {
    std::uint64_t w = p->word.load(std::memory_order_relaxed);
    p->wake_token = nullptr;
    p->word.store((w | park_bits::all) + 1, std::memory_order_relaxed);
}

// A waker wins the right to ready p. acq_rel: the winner sees the waiter the
// parker published, and the parker later sees what the winner wrote.
inline bool claim(parker* p) noexcept {
    std::uint64_t v = p->word.load(std::memory_order_relaxed);
    while (!(v & park_bits::claimed))
        if (p->word.compare_exchange_weak(v, v | park_bits::claimed, std::memory_order_acq_rel,
                                          std::memory_order_relaxed))
            return true;
    return false;
}

// Makes a claimed parker runnable. Safe from any thread, never blocks.
void ready(parker* p) noexcept;

// Blocks the caller until ready(). unlock(arg) runs once the caller is committed
// to sleep (after the stack switch for a goroutine). unlock may be null.
// `object` names what is waited on (a wait_group, a mutex, ...), for
// diagnostics and for shutdown, which unwinds stuck waits one object at a
// time.
wake park(wait_reason reason, void (*unlock)(void*), void* arg, park_mode mode = park_mode::unwinds,
          const void* object = nullptr) noexcept;

// Thrown out of a blocking call whose goroutine is being unwound at shutdown
// (the public name is goro::goroutine_exit, goro/errors.hpp). A goroutine
// that has swallowed it before, while shutdown abandons such goroutines
// (scheduler::abandon_swallowers), is abandoned here instead: it never
// returns.
using goroutine_unwind = goro::goroutine_exit;
[[noreturn]] void throw_unwind();

// True while the runtime is unwinding goroutines at shutdown (blocking calls
// then unwind at once instead of parking).
extern std::atomic<bool> g_shutting_down;
inline bool shutting_down() noexcept {
    return g_shutting_down.load(std::memory_order_seq_cst);
}

// True when a blocking call made now must unwind the caller instead of
// blocking: the runtime shuts down, the caller is a goroutine, and no
// exception is in flight on it (in a destructor during unwinding, a throw
// would terminate; such calls wait as usual).
bool must_unwind_now() noexcept;

}  // namespace goro::detail
