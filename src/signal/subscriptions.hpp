// signal/subscriptions.hpp — what the rest of the runtime may ask the
// signal registry (signal/signal.cpp) without taking its lock.
#pragma once

namespace goro::detail {

// True while any signal_notify or signal_context subscription exists: a
// signal from outside the process may then wake a goroutine (through the
// forwarder thread), so options::detect_deadlock must not declare a
// deadlock (Go's checkdead never fires once signal.Notify is in use). Read
// without the registry's lock: a subscription made before a goroutine parks
// is seen by every later check.
bool signals_subscribed() noexcept;

}  // namespace goro::detail
