// goro/cond.hpp — sync.Cond.
//
//   goro::mutex m;  goro::cond c(m);  bool ready = false;
//   { std::unique_lock lk(m); c.wait(lk, [&] { return ready; }); }   // waiter
//   { std::lock_guard lk(m); ready = true; } c.broadcast();           // notifier
//
// wait() atomically unlocks the mutex and parks until signal() or
// broadcast(), then relocks. A signal wakes one waiter that started waiting
// before it (none are lost between the unlock and the park); broadcast wakes
// all of them. As in Go there are no spurious wake-ups, but as always
// re-check the condition in a loop (the predicate overload does).
// Requires: the unique_lock passed to wait() owns this cond's mutex.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <cstdint>
#include <mutex>
#include <vector>

#include "goro/detail/intrusive_list.hpp"
#include "goro/mutex.hpp"

namespace goro {

// Go's sync.Cond over a goro::mutex (see the top of this file).
class cond {
  public:
    // A condition variable whose waits hold m.
    explicit cond(mutex& m) noexcept : m_(&m) {}
    cond(const cond&) = delete;
    cond& operator=(const cond&) = delete;

    // Unlocks lk's mutex, parks until signalled, and locks it again (a wakeup
    // may be spurious: wait in a loop, or pass the predicate to wait for).
    // Throws misuse_error unless lk holds this cond's mutex.
    void wait(std::unique_lock<mutex>& lk);
    template <class Pred>
    void wait(std::unique_lock<mutex>& lk, Pred pred) {
        while (!pred()) wait(lk);
    }
    // Wakes one waiter (the longest waiting), or all of them.
    void signal();
    void broadcast();

    // The mutex given at construction (Go's c.L).
    mutex& underlying() const noexcept { return *m_; }

  private:
    mutex* m_;
    // Guarded by this cond's wait lock (sync/wait_lock.hpp).
    std::uint64_t wait_ticket_ = 0;    // next ticket handed to a waiter
    std::uint64_t notify_ticket_ = 0;  // tickets below this are notified
    detail::intrusive_list<detail::waiter> q_;
    // Tickets of waiters unwound at shutdown before being notified: a signal
    // passes over them to the next waiter.
    std::vector<std::uint64_t> dead_tickets_;
};

}  // namespace goro
