// scheduler/idle.cpp — idle workers, spinning, the timer watcher and the
// wake slot. The protocol and its step labels (A1.., B1..) are in idle.hpp.
#include "scheduler/idle.hpp"

#include <algorithm>

#include "diagnostics/assert.hpp"
#include "diagnostics/trace.hpp"
#include "goro/detail/spin_mutex.hpp"
#include "net/poller.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

void futex_wait_for(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                    std::int64_t timeout_ns) noexcept;

namespace {

// An idle worker watches its wake word this long before it sleeps in the
// kernel: work often comes back within microseconds (a goroutine spawning in
// a loop, a producer refilling a channel), and a wake that finds the worker
// still watching costs neither side a system call or a context switch.
// (0 and 100 us measured no different at procs=2: docs/performance.md.)
constexpr std::int64_t watch_ns = 20'000;
// wake_slot word while its worker sleeps in the kernel: on its futex, or in
// the poller's epoll_wait.
constexpr std::uint32_t in_kernel = 3;
constexpr std::uint32_t in_poll = 4;

// The OS sleep under a wake slot: a futex on its word.
struct os_sleep {
    static void sleep(std::atomic<std::uint32_t>* word, std::int64_t deadline) noexcept {
        if (deadline == no_deadline) {
            futex_wait(word, in_kernel);
        } else {
            // Compared first: a deadline saturated to the clock's minimum
            // would overflow deadline - now.
            const std::int64_t now = now_ns();
            if (deadline > now) futex_wait_for(word, in_kernel, deadline - now);
        }
    }
    static void kick(std::atomic<std::uint32_t>* word) noexcept { futex_wake(word, 1); }
};

void count_wake(worker* w, wake_reason why) noexcept {
    switch (why) {
        case wake_reason::none:
            w->counters.wakes_timeout.bump();
            break;
        case wake_reason::spin:
            w->counters.wakes_spin.bump();
            break;
        case wake_reason::recheck:
            w->counters.wakes_recheck.bump();
            break;
    }
}

}  // namespace

// ---- wake_slot ----------------------------------------------------------

wake_reason wake_slot::wait(std::int64_t deadline, bool poll) noexcept {
    // Watch for a while (bounded; the clock is read every 16 pauses).
    const std::int64_t watch_until = std::min(real_now_ns() + watch_ns, deadline);
    for (std::uint32_t i = 1;; ++i) {
        if (word_.load(std::memory_order_acquire) != 0)
            return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
        cpu_relax();
        if ((i & 15) == 0 && real_now_ns() >= watch_until) break;
    }
    // Announce the sleep; a wake that came first makes the CAS fail. Both
    // sides use read-modify-writes of the one word, so either the waker sees
    // `in_kernel` (and kicks) or we see its wake: none is lost.
    const std::uint32_t asleep = poll ? in_poll : in_kernel;
    std::uint32_t seen = 0;
    if (!word_.compare_exchange_strong(seen, asleep, std::memory_order_acq_rel))
        return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
    if (poll) return wait_polling(deadline);
    for (;;) {
        if (deadline != no_deadline && deadline <= now_ns()) {
            seen = in_kernel;
            if (word_.compare_exchange_strong(seen, 0, std::memory_order_acq_rel))
                return wake_reason::none;
            // A wake beat the timeout.
            return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
        }
        futex_sleeps_.bump();
        os_sleep::sleep(&word_, deadline);
        if (word_.load(std::memory_order_acquire) != in_kernel)
            return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
    }
}

// Sleeps in epoll_wait, delivering events, until a wake (the kick), the
// deadline, or events that readied someone (then the worker looks for work
// itself: wake_reason::none). The word says in_poll meanwhile.
wake_reason wake_slot::wait_polling(std::int64_t deadline) noexcept {
    poller& p = poller::instance();
    for (;;) {
        poll_sleeps_.bump();
        const int readied = p.poll(deadline, true);
        if (word_.load(std::memory_order_acquire) != in_poll)
            return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
        if (readied > 0 || (deadline != no_deadline && deadline <= now_ns())) {
            std::uint32_t seen = in_poll;
            if (word_.compare_exchange_strong(seen, 0, std::memory_order_acq_rel))
                return wake_reason::none;
            return static_cast<wake_reason>(word_.exchange(0, std::memory_order_acq_rel));
        }
    }
}

void wake_slot::wake(wake_reason r) noexcept {
    switch (word_.exchange(static_cast<std::uint32_t>(r), std::memory_order_acq_rel)) {
        case in_kernel:
            os_sleep::kick(&word_);
            break;
        case in_poll:
            poller::instance().kick();
            break;
        default:
            break;
    }
}

// ---- idle_workers -------------------------------------------------------

idle_workers::idle_workers(unsigned nprocs, const std::atomic<unsigned>& active,
                           const std::atomic<std::int64_t>& next_deadline)
    : nprocs_(nprocs), active_(active), next_deadline_(next_deadline) {
    lock_scope lk(mu_);
    list_.reserve(nprocs);
}

worker* idle_workers::pop_locked() {
    if (list_.empty()) return nullptr;
    worker* v = list_.back();
    list_.pop_back();
    v->in_idle = false;
    const std::int32_t left = nidle_.fetch_sub(1, std::memory_order_seq_cst) - 1;
    GORO_ASSERT(left >= 0, "idle: negative idle count");
    (void)left;
    return v;
}

bool idle_workers::remove(worker* w) noexcept {
    lock_scope lk(mu_);
    if (!w->in_idle) return false;
    list_.erase(std::find(list_.begin(), list_.end(), w));
    w->in_idle = false;
    const std::int32_t left = nidle_.fetch_sub(1, std::memory_order_seq_cst) - 1;
    GORO_ASSERT(left >= 0, "idle: negative idle count");
    (void)left;
    return true;
}

// The spinning count is raised (CAS 0 -> 1) before an idle worker is
// popped, so for a moment it counts a spinner that does not exist yet, and
// other submitters, seeing it, wake nobody: they count on it to find their
// work. If the pop then finds the list empty (every worker was busy), that
// spinner never comes. A worker that went idle since has checked the queues
// (B4), but maybe before such a submitter's work arrived: so after undoing
// the count, look again — an idle worker now means one may sleep beside
// work nobody will wake it for. (A submitter that skipped read the count
// before the undo; the undo and the idle count's read are seq_cst, so the
// read sees every worker that went idle before that submitter's work.)
// This lost a wake-up once in ~200,000 blocking calls under load.
void idle_workers::wake_one() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // A2
    for (;;) {
        if (nidle_.load(std::memory_order_seq_cst) == 0) return;
        std::int32_t none = 0;
        if (nspinning_.load(std::memory_order_relaxed) != 0 ||
            !nspinning_.compare_exchange_strong(none, 1, std::memory_order_seq_cst))
            return;
        worker* v;
        {
            lock_scope lk(mu_);
            v = pop_locked();
        }
        if (v) {
            v->wake.wake(wake_reason::spin);  // A3: it starts out spinning, counted above
            return;
        }
        nspinning_.fetch_sub(1, std::memory_order_seq_cst);
    }
}

void idle_workers::timer_added(std::int64_t when) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (nspinning_.load(std::memory_order_relaxed) > 0) return;  // it checks timers
    if (worker* wt = watcher_.load(std::memory_order_acquire)) {
        if (watcher_until_.load(std::memory_order_acquire) <= when) return;
        if (remove(wt)) wt->wake.wake(wake_reason::recheck);
        return;
    }
    if (nidle_.load(std::memory_order_relaxed) == 0) return;  // busy workers check timers
    worker* v;
    {
        lock_scope lk(mu_);
        v = pop_locked();
    }
    if (v) v->wake.wake(wake_reason::recheck);
}

void idle_workers::poller_needed() noexcept {
    if (watcher_polls_.load(std::memory_order_acquire)) return;
    if (worker* wt = watcher_.load(std::memory_order_acquire)) {
        if (remove(wt)) wt->wake.wake(wake_reason::recheck);  // re-sleeps polling
        return;
    }
    if (nidle_.load(std::memory_order_relaxed) == 0) return;  // busy workers poll
    worker* v;
    {
        lock_scope lk(mu_);
        v = pop_locked();
    }
    if (v) v->wake.wake(wake_reason::recheck);
}

void idle_workers::wake_all(const std::vector<worker*>& all) noexcept {
    for (worker* w : all) {
        remove(w);
        w->wake.wake(wake_reason::recheck);
    }
}

void idle_workers::poke_if_idle(worker* w) noexcept {
    if (remove(w)) w->wake.wake(wake_reason::recheck);
}

bool idle_workers::try_start_spinning(worker* w) noexcept {
    if (w->spinning) return true;
    const std::int32_t busy =
        static_cast<std::int32_t>(active_.load(std::memory_order_relaxed)) - nidle_.load();
    if (2 * nspinning_.load() >= busy) return false;
    w->spinning = true;
    nspinning_.fetch_add(1, std::memory_order_seq_cst);
    return true;
}

void idle_workers::found_work(worker* w) noexcept {
    if (!w->spinning) return;
    w->spinning = false;
    // The last spinner found work: there may be more, so keep one looking.
    const std::int32_t was = nspinning_.fetch_sub(1, std::memory_order_seq_cst);
    GORO_ASSERT(was >= 1, "idle: negative spinning count");
    if (was == 1) wake_one();
}

void idle_workers::enter(worker* w) noexcept {
    {
        lock_scope lk(mu_);  // B1
        list_.push_back(w);
        w->in_idle = true;
        const std::int32_t n = nidle_.fetch_add(1, std::memory_order_seq_cst) + 1;
        GORO_ASSERT(n <= static_cast<std::int32_t>(nprocs_),
                    "idle: more idle workers than workers");
        (void)n;
    }
    if (w->spinning) {  // B2
        w->spinning = false;
        nspinning_.fetch_sub(1, std::memory_order_seq_cst);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // B3
}

void idle_workers::leave(worker* w) noexcept {
    // Either take ourselves off the idle list, or someone popped us and is
    // about to (or did) write our wake word: take that wake.
    if (remove(w)) return;
    const wake_reason why = w->wake.wait(no_deadline);
    count_wake(w, why);
    if (why == wake_reason::spin) w->spinning = true;
}

bool idle_workers::become_watcher(worker* w, std::int64_t deadline) noexcept {
    worker* none = nullptr;
    if (!watcher_.compare_exchange_strong(none, w, std::memory_order_seq_cst)) {
        // Someone else watches, maybe for a later deadline than the one we
        // saw (a submitter that found us spinning left the timer to us):
        // poke it so it re-arms for ours.
        worker* wt = watcher_.load(std::memory_order_seq_cst);
        if (wt && watcher_until_.load(std::memory_order_seq_cst) > deadline && remove(wt))
            wt->wake.wake(wake_reason::recheck);
        return false;
    }
    // Only the watcher writes watcher_until_ (a loser overwriting it hid an
    // earlier deadline from timer_added once: a lost timer wake-up).
    watcher_until_.store(deadline, std::memory_order_seq_cst);
    return true;
}

void idle_workers::sleep(worker* w, std::int64_t deadline) noexcept {
    poller* p = poller::if_active();
    const bool poll = p && p->has_waiters();
    const bool watcher = (deadline != no_deadline || poll) && become_watcher(w, deadline);
    // Recheck: an earlier timer may have come in before we became watcher
    // (its adder may have read a stale watcher_until_ and not poked us).
    if (watcher && next_deadline_.load(std::memory_order_seq_cst) < deadline) {
        watcher_.store(nullptr, std::memory_order_seq_cst);
        leave(w);
        return;
    }
    // B5 (the watcher only until the earliest deadline, and in the poller
    // while anyone waits on a descriptor).
    if (watcher) watcher_polls_.store(poll, std::memory_order_seq_cst);
    if (tracing()) [[unlikely]]
        trace_worker_sleep(w, watcher);
    const wake_reason why = w->wake.wait(watcher ? deadline : no_deadline, watcher && poll);
    if (tracing()) [[unlikely]]
        trace_worker_wake(w, why);
    count_wake(w, why);
    if (watcher) {
        watcher_polls_.store(false, std::memory_order_seq_cst);
        watcher_.store(nullptr, std::memory_order_seq_cst);
    }
    switch (why) {
        case wake_reason::none:  // timed out: still listed
            leave(w);
            break;
        case wake_reason::spin:
            w->spinning = true;
            break;
        case wake_reason::recheck:
            break;
    }
}

}  // namespace goro::detail
