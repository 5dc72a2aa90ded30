// channels/chan_check.hpp — checking a channel's invariants (chan_core.hpp)
// before its lock is released, in builds with GORO_ASSERTS; nothing
// otherwise.
#pragma once

#include "goro/detail/chan_core.hpp"

namespace goro::detail {

#if defined(GORO_ASSERTS)
// Requires c->mu held; call it before unlocking after a change.
void check_chan_locked(chan_core* c) noexcept GORO_REQUIRES(c->mu);
#else
inline void check_chan_locked(chan_core*) noexcept {}
#endif

// Unlocks c after checking it.
inline void unlock_checked(chan_core* c) noexcept GORO_RELEASE(c->mu) {
    check_chan_locked(c);
    c->mu.unlock();
}

}  // namespace goro::detail
