// channels/chan_check.hpp — locking a channel's core: its invariants
// (chan_core.hpp) are checked before its lock is released, in builds with
// GORO_ASSERTS, and the lock is announced to ThreadSanitizer as an acquire
// and a release of the core (sanitizers/hooks.hpp: the values that move
// through the channel, and the core's last free, are ordered by this lock).
// Every lock and unlock of a core's mu goes through here.
#pragma once

#include "goro/detail/chan_core.hpp"
#include "sanitizers/hooks.hpp"

namespace goro::detail {

#if defined(GORO_ASSERTS)
// Requires c->mu held; call it before unlocking after a change.
void check_chan_locked(chan_core* c) noexcept GORO_REQUIRES(c->mu);
#else
inline void check_chan_locked(chan_core*) noexcept {}
#endif

inline void lock_core(chan_core* c) noexcept GORO_ACQUIRE(c->mu) {
    c->mu.lock();
    san::tsan_acquire(c);
}
// Unlocks c without checking it (a lock that changed nothing).
inline void unlock_core_unchecked(chan_core* c) noexcept GORO_RELEASE(c->mu) {
    san::tsan_release(c);
    c->mu.unlock();
}
// Unlocks c after checking it.
inline void unlock_checked(chan_core* c) noexcept GORO_RELEASE(c->mu) {
    check_chan_locked(c);
    unlock_core_unchecked(c);
}

// lock_scope for a core (unlocks unchecked; check before the scope ends
// after a change).
class GORO_SCOPED_CAPABILITY core_scope {
  public:
    explicit core_scope(chan_core* c) noexcept GORO_ACQUIRE(c->mu) : c_(c) { lock_core(c); }
    ~core_scope() GORO_RELEASE() { unlock_core_unchecked(c_); }
    core_scope(const core_scope&) = delete;
    core_scope& operator=(const core_scope&) = delete;

  private:
    chan_core* c_;
};

}  // namespace goro::detail
