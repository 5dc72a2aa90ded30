// signal/signal.cpp — goro::signal_notify, signal_stop and signal_context
// (goro/signal.hpp): OS signals relayed to channels and contexts.
//
// Three pieces:
//   - the handler (async-signal-safe): sets pending[sig], then writes the
//     eventfd. Nothing else: no lock, no allocation, errno preserved.
//   - the forwarder, a dedicated plain thread started with the first
//     subscription and kept for the life of the process (detached, blocked
//     in read() when idle): reads the eventfd, then takes every pending flag
//     (exchange to false) and delivers that signal. The flag is set before
//     the write and taken after the read, so a signal whose flag the
//     forwarder missed has a write still to come: none is lost; several of
//     one kind before the forwarder looks are delivered once (coalesced).
//   - the registry: the subscriptions (a channel, or a signal_context's
//     cancel function, and a set of signals each), how many subscriptions
//     include each signal, and the disposition each signal had before its
//     first subscription, restored when its last one goes.
//
// Why a thread of its own rather than the monitor or a goroutine:
// subscriptions are process-wide and outlive run() (signals between two
// runs still reach a buffered channel), while the monitor and goroutines
// live and die with a runtime; and delivery must never wait for a worker.
// The forwarder is a plain thread, so a try_send that finds a parked
// receiver readies it like any plain-thread waker.
//
// Invariants (under the registry's lock): refs[s] is the number of
// subscriptions whose set includes s; goro's handler is installed for s
// exactly while refs[s] > 0, and saved[s] then holds the disposition to
// restore; a subscription is in `subs` exactly while its set is non-empty.
// Deliveries to channels happen under the lock, so once signal_stop has
// taken it, the stopped channel receives nothing more. Cancelling a
// signal_context happens after the lock is released (it may start
// goroutines); a cancel that races with stop() is harmless (both cancel).
// Lock order: the registry's lock is outermost (lock_rank::signals): a
// delivery takes a channel's lock (and what ready() takes) under it.
#include "goro/signal.hpp"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <bitset>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "goro/detail/spin_mutex.hpp"
#include "goro/errors.hpp"
#include "parking/ranked_mutex.hpp"
#include "signal/subscriptions.hpp"
#include "sanitizers/hooks.hpp"

namespace goro::detail {

using signal_set = std::bitset<NSIG>;

struct signal_subscription {
    send_chan<int> ch;   // a signal_notify subscription, or
    cancel_func cancel;  // a signal_context's
    signal_set sigs;     // guarded by the registry's lock
    bool fired = false;  // guarded by the registry's lock: a signal cancelled the context
};

namespace {

std::atomic<int> wake_fd{-1};
std::atomic<bool> pending[NSIG];
// subs_.size(), mirrored for signals_subscribed (written under the lock).
std::atomic<std::size_t> subscription_count{0};

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

void on_signal(int sig) {
    const int saved_errno = errno;
    pending[sig].store(true, std::memory_order_seq_cst);
    const std::uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd.load(std::memory_order_relaxed), &one, sizeof one);
    (void)ignored;  // only fails if the counter is about to overflow: a wake is pending anyway
    errno = saved_errno;
}

std::string signal_name(int sig) {
    std::string s = std::to_string(sig);
    if (const char* abbrev = ::sigabbrev_np(sig)) s += std::string(" (SIG") + abbrev + ")";
    return s;
}

// The signals named, checked (goro/signal.hpp, "Requires").
signal_set checked_signals(std::span<const int> signals, const char* who) {
    const std::string w = who;
    if (signals.empty())
        throw misuse_error(w +
                           ": no signals named (goro does not relay every signal when none "
                           "are named, as Go does)");
    signal_set set;
    for (int s : signals) {
        if (s <= 0 || s >= NSIG)
            throw misuse_error(w + ": " + std::to_string(s) +
                               " is not a signal number (expected 1.." + std::to_string(NSIG - 1) +
                               ")");
        if (s == SIGKILL || s == SIGSTOP)
            throw misuse_error(w + ": signal " + signal_name(s) + " cannot be caught");
        if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP ||
            s == SIGSYS)
            throw misuse_error(w + ": signal " + signal_name(s) +
                               " is a synchronous fault signal and cannot be relayed (goro reports "
                               "stack overflows on SIGSEGV and SIGBUS)");
        if (s > 31 && s < SIGRTMIN)
            throw misuse_error(w + ": signal " + std::to_string(s) +
                               " is reserved by the C library (real-time signals start at " +
                               std::to_string(SIGRTMIN) + ")");
        set.set(static_cast<std::size_t>(s));
    }
    return set;
}

void forward_loop(int fd) noexcept;

class registry {
  public:
    static registry& instance() {
        // Never destroyed: the forwarder and handlers may run while the
        // process exits.
        static registry& r = *new registry;
        return r;
    }

    ranked_mutex mu{lock_rank::signals};

    // Starts the forwarder (once). Throws std::system_error if it cannot.
    void ensure_started() GORO_REQUIRES(mu) {
        if (started_) return;
        const int fd = ::eventfd(0, EFD_CLOEXEC);
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(), "goro: signals: eventfd");
        try {
            std::thread([fd] { forward_loop(fd); }).detach();
        } catch (...) {
            ::close(fd);
            throw;
        }
        wake_fd.store(fd, std::memory_order_seq_cst);
        started_ = true;
    }

    // Adds `want` to s's set (and s to subs if new), installing the handler
    // for signals nobody subscribed to yet. On failure nothing changed.
    void add(const std::shared_ptr<signal_subscription>& s, const signal_set& want)
        GORO_REQUIRES(mu) {
        const signal_set added = want & ~s->sigs;
        const bool fresh = s->sigs.none();
        if (fresh) subs_.reserve(subs_.size() + 1);  // the push_back below cannot throw
        std::vector<int> installed;
        installed.reserve(NSIG);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (!added.test(static_cast<std::size_t>(sig)) || refs_[sig] != 0) continue;
            if (!install(sig)) {
                const int err = errno;
                for (int done : installed) restore(done);
                throw std::system_error(err, std::generic_category(),
                                        "goro: signals: sigaction(" + signal_name(sig) + ")");
            }
            installed.push_back(sig);
        }
        for (int sig = 1; sig < NSIG; ++sig)
            if (added.test(static_cast<std::size_t>(sig))) ++refs_[sig];
        s->sigs |= added;
        if (fresh) subs_.push_back(s);
        subscription_count.store(subs_.size(), std::memory_order_seq_cst);
    }

    // Removes s (all its signals), restoring dispositions nobody needs now.
    void remove(const std::shared_ptr<signal_subscription>& s) GORO_REQUIRES(mu) {
        if (s->sigs.none()) return;
        for (int sig = 1; sig < NSIG; ++sig)
            if (s->sigs.test(static_cast<std::size_t>(sig)) && --refs_[sig] == 0) restore(sig);
        s->sigs.reset();
        std::erase(subs_, s);
        subscription_count.store(subs_.size(), std::memory_order_seq_cst);
    }

    std::shared_ptr<signal_subscription> find(const send_chan<int>& ch) GORO_REQUIRES(mu) {
        for (const auto& s : subs_)
            if (!s->ch.is_nil() && s->ch == ch) return s;
        return nullptr;
    }

    // The forwarder: relays sig to every subscriber. Channels get it under
    // the lock; contexts are cancelled after it.
    void deliver(int sig) noexcept {
        std::vector<cancel_func> to_cancel;
        {
            lock_scope lk(mu);
            for (const auto& s : subs_) {
                if (!s->sigs.test(static_cast<std::size_t>(sig))) continue;
                if (!s->ch.is_nil()) {
                    try {
                        (void)s->ch.try_send(int{sig});  // full: dropped, as Go
                    } catch (const closed_channel_error&) {
                        // a closed channel gets nothing
                    }
                } else if (!s->fired) {
                    try {
                        to_cancel.push_back(s->cancel);
                        s->fired = true;
                    } catch (...) {
                        // out of memory: the next signal tries again
                    }
                }
            }
        }
        for (const cancel_func& c : to_cancel) {
            try {
                c(std::make_exception_ptr(std::runtime_error(
                    "goro: signal_context: received signal " + signal_name(sig))));
            } catch (...) {
                c();  // building the cause failed (out of memory): cancel without it
            }
        }
    }

  private:
    registry() = default;

    bool install(int sig) GORO_REQUIRES(mu) {
        struct sigaction sa {};
        sa.sa_handler = &on_signal;
        sigemptyset(&sa.sa_mask);
        // SA_ONSTACK: on a worker, the handler runs on its alternate signal
        // stack rather than on a goroutine's stack, which may be nearly full.
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        return ::sigaction(sig, &sa, &saved_[sig]) == 0;
    }
    void restore(int sig) GORO_REQUIRES(mu) { ::sigaction(sig, &saved_[sig], nullptr); }

    bool started_ GORO_GUARDED_BY(mu) = false;
    std::vector<std::shared_ptr<signal_subscription>> subs_ GORO_GUARDED_BY(mu);
    int refs_[NSIG] GORO_GUARDED_BY(mu) = {};
    struct sigaction saved_[NSIG] GORO_GUARDED_BY(mu) = {};
};

void forward_loop(int fd) noexcept {
    pthread_setname_np(pthread_self(), "goro-signals");
    registry& r = registry::instance();
    for (;;) {
        std::uint64_t n = 0;
        if (::read(fd, &n, sizeof n) < 0 && errno != EINTR) continue;
        for (int sig = 1; sig < NSIG; ++sig)
            if (pending[sig].exchange(false, std::memory_order_seq_cst)) r.deliver(sig);
    }
}

}  // namespace

bool signals_subscribed() noexcept {
    return subscription_count.load(std::memory_order_seq_cst) > 0;
}

}  // namespace goro::detail

namespace goro {

using detail::registry;

// The registry's bookkeeping is ignored by TSan (sanitizers/hooks.hpp).
void signal_notify(send_chan<int> ch, std::span<const int> signals) {
    if (ch.is_nil()) throw misuse_error("goro::signal_notify: nil channel");
    detail::san::ignore_scope bookkeeping;
    const detail::signal_set want = detail::checked_signals(signals, "goro::signal_notify");
    registry& r = registry::instance();
    detail::lock_scope lk(r.mu);
    r.ensure_started();
    std::shared_ptr<detail::signal_subscription> s = r.find(ch);
    if (!s) {
        s = std::make_shared<detail::signal_subscription>();
        s->ch = std::move(ch);
    }
    r.add(s, want);
}

void signal_stop(const send_chan<int>& ch) {
    if (ch.is_nil()) return;
    detail::san::ignore_scope bookkeeping;
    registry& r = registry::instance();
    detail::lock_scope lk(r.mu);
    if (auto s = r.find(ch)) r.remove(s);
}

std::pair<context, signal_stop_func> signal_context(const context& parent,
                                                    std::span<const int> signals) {
    const detail::signal_set want = detail::checked_signals(signals, "goro::signal_context");
    detail::san::ignore_scope bookkeeping;
    auto [ctx, cancel] = with_cancel(parent);
    auto s = std::make_shared<detail::signal_subscription>();
    s->cancel = cancel;
    registry& r = registry::instance();
    detail::lock_scope lk(r.mu);
    r.ensure_started();
    r.add(s, want);
    return {ctx, signal_stop_func(std::move(s))};
}

void signal_stop_func::operator()() const {
    if (!s_) return;
    detail::san::ignore_scope bookkeeping;
    s_->cancel();
    registry& r = registry::instance();
    detail::lock_scope lk(r.mu);
    r.remove(s_);
}

}  // namespace goro
