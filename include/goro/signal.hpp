// goro/signal.hpp — OS signals delivered on channels (Go's os/signal).
//
//   auto sigs = goro::make_chan<int>(1);               // buffered: see below
//   goro::signal_notify(sigs, {SIGINT, SIGTERM});
//   int sig = *sigs.recv();                            // SIGINT or SIGTERM
//   goro::signal_stop(sigs);                           // SIGINT kills again
//
//   auto [ctx, stop] = goro::signal_context(goro::background(), {SIGINT});
//   serve(ctx);   // ctx.err() == goro::errc::canceled once SIGINT arrives
//   stop();
//
// signal_notify(ch, signals) relays each of those signals arriving at the
// process as its number on ch. Delivery never blocks: if ch has no room (no
// waiting receiver, buffer full) the signal is dropped for ch, as in Go — so
// give ch a buffer; one slot is enough to learn that a signal came. Signals
// of one kind arriving close together may be coalesced into one delivery
// (the kernel does that too). Several channels may subscribe to one signal
// (each gets it); calling signal_notify again on the same channel adds
// signals to its set. A closed channel gets nothing.
//
// While any subscription includes a signal, goro's handler catches it and
// its default action (terminating the process, say) does not happen. When
// the last subscription for a signal goes (signal_stop, or the stop function
// of signal_context), the disposition it had before the first subscription
// is restored — Go's observable behaviour too. signal_stop(ch) removes all
// of ch's signals; when it returns, ch receives no more signals. Stopping a
// channel that is not subscribed does nothing. Works from goroutines and
// plain threads, inside or outside run(): subscriptions are process-wide
// and outlive run(); a signal arriving between two runs is delivered to a
// buffered channel, where the next run finds it.
//
// signal_context(parent, signals) (Go's NotifyContext): a child of parent
// that is cancelled (err() == errc::canceled; goro::cause() names the
// signal) when one of the signals arrives, or when parent is cancelled.
// stop() cancels it and removes its subscription; until stop() is called
// the signals stay caught, a second one included, as in Go. Call stop()
// when done, or the subscription stays for the life of the process.
//
// How: the handler only sets a flag for the signal and writes an eventfd
// (both async-signal-safe); a dedicated thread, started by the first
// subscription and then kept for the life of the process, reads the
// eventfd and delivers to the subscribers under the registry's lock (that
// lock is what makes signal_stop's guarantee hold).
//
// Requires (else goro::misuse_error naming the call and the signal): a
// non-nil channel; at least one signal (Go's "no signals means all of them"
// is not supported); signal numbers that can be caught — not SIGKILL or
// SIGSTOP, not the synchronous fault signals SIGSEGV, SIGBUS, SIGFPE,
// SIGILL, SIGTRAP, SIGSYS (goro reports stack overflows on SIGSEGV/SIGBUS),
// not the real-time signals glibc reserves. Installing a handler of your own
// for a subscribed signal takes it away from goro, and goro's restore then
// overwrites yours.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <initializer_list>
#include <memory>
#include <span>
#include <utility>

#include "goro/chan.hpp"
#include "goro/context.hpp"

namespace goro {

namespace detail {
struct signal_subscription;
}

// Go's signal.Notify and signal.Stop (see the top of this file).
void signal_notify(send_chan<int> ch, std::span<const int> signals);
inline void signal_notify(send_chan<int> ch, std::initializer_list<int> signals) {
    signal_notify(std::move(ch), std::span<const int>(signals.begin(), signals.size()));
}
void signal_stop(const send_chan<int>& ch);

// The stop function of signal_context: cancels the context and removes its
// subscription. Copyable, idempotent, safe from any thread.
class signal_stop_func {
  public:
    signal_stop_func() = default;
    // For goro's own code: the stop function of a subscription, and calling it.
    explicit signal_stop_func(std::shared_ptr<detail::signal_subscription> s) : s_(std::move(s)) {}
    void operator()() const;

  private:
    std::shared_ptr<detail::signal_subscription> s_;
};

// Go's signal.NotifyContext: a child of parent cancelled when one of the
// signals arrives.
std::pair<context, signal_stop_func> signal_context(const context& parent,
                                                    std::span<const int> signals);
inline std::pair<context, signal_stop_func> signal_context(const context& parent,
                                                           std::initializer_list<int> signals) {
    return signal_context(parent, std::span<const int>(signals.begin(), signals.size()));
}

}  // namespace goro
