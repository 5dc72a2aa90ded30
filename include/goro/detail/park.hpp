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
//   3. begin_park(p)        (claim := open)
//   4. publish waiter(s) pointing at p
//   5. park(reason, unlock, arg)            a. lock the structure, find a waiter
//      -- the switch away happens first,    b. claim(p) — exactly one waker wins
//         then unlock(arg) runs off the        per episode; a loser skips the waiter
//         parked stack, so no waker can     c. fill in the waiter's result, unlock
//         see p before it is really parked  d. ready(p)  (never under the lock)
//   6. park returns wake::normal, or wake::unwind when the runtime is shutting
//      down and unwinds parked goroutines: the caller removes its waiters (under
//      the lock) and calls throw_unwind().
//
// Invariants: a parker is readied at most once per episode (claim arbitrates);
// a waiter's memory belongs to the blocked side and is valid until ready().
#pragma once

#include <atomic>
#include <cstdint>

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
    run,  // a plain thread waiting in goro::run
};

const char* to_string(wait_reason r) noexcept;

struct parker {
    // 0 = open (may be claimed), 1 = claimed by a waker (or by shutdown).
    std::atomic<std::uint32_t> claimed{1};
    // Set by the waker that won the claim; read by the parker after it wakes
    // (select uses it to learn which case fired).
    void* wake_token = nullptr;
    bool is_goroutine = false;
};

enum class wake : std::uint8_t { normal, unwind };

// The parker of the caller: its goroutine's, or its thread's.
parker* current_parker() noexcept;

// Opens a new episode. Call it with the structure locked, before publishing waiters.
inline void begin_park(parker* p) noexcept {
    p->wake_token = nullptr;
    p->claimed.store(0, std::memory_order_relaxed);
}

// A waker wins the right to ready p. acq_rel: the winner sees the waiter the
// parker published, and the parker later sees what the winner wrote.
inline bool claim(parker* p) noexcept {
    std::uint32_t open = 0;
    return p->claimed.compare_exchange_strong(open, 1, std::memory_order_acq_rel,
                                              std::memory_order_relaxed);
}

// Makes a claimed parker runnable. Safe from any thread, never blocks.
void ready(parker* p) noexcept;

// Blocks the caller until ready(). unlock(arg) runs once the caller is committed
// to sleep (after the stack switch for a goroutine). unlock may be null.
wake park(wait_reason reason, void (*unlock)(void*), void* arg) noexcept;

// Thrown out of a blocking call whose goroutine is being unwound at shutdown.
// Deliberately not a std::exception: `catch (const std::exception&)` lets it pass.
struct goroutine_unwind {};
[[noreturn]] void throw_unwind();

// True while the runtime is unwinding goroutines at shutdown (blocking calls
// then unwind at once instead of parking).
bool shutting_down() noexcept;

}  // namespace goro::detail
