// net/poller.cpp — epoll, the poll_desc pool, waiting and delivery. The
// design and the invariants are in poller.hpp.
#include "net/poller.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "diagnostics/assert.hpp"
#include "diagnostics/trace.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr int max_events = 128;

constexpr std::uint32_t read_events = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t write_events = EPOLLOUT | EPOLLHUP | EPOLLERR;

// Claims and unlinks every waiter of s, each with result `why`; returns how
// many.
int wake_all_locked(poll_desc::side& s, io_status why, wake_list& woken) {
    int n = 0;
    while (waiter* w = pop_claimed(s.waiters)) {
        w->n = static_cast<std::int64_t>(why);
        woken.push(w);
        ++n;
    }
    return n;
}

void deadline_fired(timer_node* t) {
    auto* dt = static_cast<poll_desc::side::deadline_timer*>(t);
    poll_desc* pd = dt->pd;
    wake_list woken;
    {
        lock_scope lk(pd->mu);
        poll_desc::side& s = pd->of(dt->dir);
        // A deadline moved later meanwhile re-armed the timer: not expired.
        if (s.deadline != clock::time_point::max() && s.deadline <= goro::now()) {
            s.expired = true;
            wake_all_locked(s, io_status::timeout, woken);
        }
    }
    woken.ready_all();
}

// The fd -> poll_desc table for plain descriptors: 1024 chunks of 1024,
// allocated on first use, never freed (a descriptor number is reused for
// whatever file gets it next; the one-shot arming per wait makes that safe).
constexpr std::size_t chunk_bits = 10, chunk_size = std::size_t{1} << chunk_bits;
std::atomic<std::atomic<poll_desc*>*> fd_table[1024];

// fd's entry in fd_table (its chunk made if missing and `make`), or null
// when fd is out of the table's range (or its chunk is missing).
std::atomic<poll_desc*>* table_entry(int fd, bool make = true) {
    if (fd < 0 || static_cast<std::size_t>(fd) >= chunk_size * 1024) return nullptr;
    std::atomic<std::atomic<poll_desc*>*>& slot =
        fd_table[static_cast<std::size_t>(fd) >> chunk_bits];
    std::atomic<poll_desc*>* chunk = slot.load(std::memory_order_acquire);
    if (!chunk) {
        if (!make) return nullptr;
        auto* fresh = new std::atomic<poll_desc*>[chunk_size];
        for (std::size_t i = 0; i < chunk_size; ++i)
            fresh[i].store(nullptr, std::memory_order_relaxed);
        if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel))
            chunk = fresh;
        else
            delete[] fresh;
    }
    return &chunk[static_cast<std::size_t>(fd) & (chunk_size - 1)];
}

}  // namespace

// ---- poll_desc ----------------------------------------------------------

namespace {

// A wait's own deadline: a timer in the waiter's frame, started only once
// the waiter is parked (by the park's unlock callback), so its fire never
// readies a goroutine that is still running.
struct wait_timer : timer_node {
    poll_desc* pd = nullptr;
    waiter* w = nullptr;
};

void wait_timer_fired(timer_node* t) {
    auto* wt = static_cast<wait_timer*>(t);
    io_cancel c{wt->pd, nullptr};
    {
        lock_scope lk(wt->pd->mu);
        c.w = wt->w->queued ? wt->w : nullptr;
    }
    if (c.w) interrupt_wait(c, io_status::timeout);
}

struct park_args {
    spin_mutex* mu;
    wait_timer* timer;  // or null
    clock::time_point until;
};

void start_timer_and_release(void* a) GORO_NO_THREAD_SAFETY_ANALYSIS {
    auto* args = static_cast<park_args*>(a);
    if (args->timer) timer_start(args->timer, args->until);
    args->mu->unlock();
}

}  // namespace

void interrupt_wait(io_cancel& c, io_status why) noexcept {
    waiter* w;
    {
        lock_scope lk(c.pd->mu);
        w = c.w;
        if (!w) {  // between waits: the next wait returns it
            c.fired = true;
            c.why = why;
            return;
        }
        if (!w->queued || !claim(w->p)) return;
        c.pd->of(w->is_send ? io_dir::write : io_dir::read).waiters.remove(w);
        w->n = static_cast<std::int64_t>(why);
    }
    ready(w->p);
}

io_status poll_desc::wait(io_dir d, clock::time_point until, io_cancel* cancel)
    GORO_NO_THREAD_SAFETY_ANALYSIS {  // mu is released by the park's unlock callback
    poller& p = poller::instance();
    side& s = of(d);
    // Someone must poll: count this waiter first, then make sure a worker
    // polls (a plain thread with no runtime started starts one) — neither
    // under mu: starting takes the lifecycle lock.
    p.waiter_added();
    struct uncount {
        poller& p;
        ~uncount() { p.waiter_removed(); }
    } count_guard{p};
    {
        runtime_use use(true);
        use.get()->idle.poller_needed();
    }
    mu.lock();
    if (closing) {
        mu.unlock();
        return io_status::closed;
    }
    if (s.ready) {
        s.ready = false;
        mu.unlock();
        return io_status::ready;
    }
    if (s.expired || until <= goro::now()) {
        mu.unlock();
        return io_status::timeout;
    }
    if (cancel && cancel->fired) {
        mu.unlock();
        return cancel->why;
    }
    waiter w;
    w.p = current_parker();
    w.is_send = d == io_dir::write;
    s.waiters.push_back(&w);
    if (cancel) cancel->w = &w;
    wait_timer timer;
    park_args args{&mu, nullptr, until};
    if (until != clock::time_point::max()) {
        timer.pd = this;
        timer.w = &w;
        timer.fire = &wait_timer_fired;
        args.timer = &timer;
    }
    if (!persistent && !p.arm_oneshot(this)) {
        // Never pollable: ready now (the I/O call says what is wrong).
        s.waiters.remove(&w);
        if (cancel) cancel->w = nullptr;
        mu.unlock();
        return io_status::ready;
    }
    begin_park(w.p);
    wake how = park(d == io_dir::read ? wait_reason::io_read : wait_reason::io_write,
                    &start_timer_and_release, &args);
    if (args.timer) timer_stop(&timer);  // waits out a fire in progress
    if (how == wake::unwind || cancel) {
        lock_scope lk(mu);
        if (cancel) cancel->w = nullptr;
        s.waiters.remove(&w);
    }
    if (how == wake::unwind) throw_unwind();
    return static_cast<io_status>(w.n);
}

io_status poll_desc::prepare(io_dir d) {
    lock_scope lk(mu);
    if (closing) return io_status::closed;
    const side& s = of(d);
    if (s.expired || (s.deadline != clock::time_point::max() && s.deadline <= goro::now()))
        return io_status::timeout;
    return io_status::ready;
}

void poll_desc::evict() noexcept {
    wake_list woken;
    {
        lock_scope lk(mu);
        closing = true;
        for (side& s : sides) wake_all_locked(s, io_status::closed, woken);
    }
    woken.ready_all();
}

void poll_desc::set_deadline(io_dir d, clock::time_point t) {
    side& s = of(d);
    wake_list woken;
    bool start;
    {
        lock_scope lk(mu);
        s.deadline = t;
        s.expired = t != clock::time_point::max() && t <= goro::now();
        if (s.expired) wake_all_locked(s, io_status::timeout, woken);
        start = !s.expired && t != clock::time_point::max();
    }
    woken.ready_all();
    // Outside pd.mu: timer_stop waits for a running fire, which takes pd.mu.
    // The timer's pd, dir and fire are set once, when the poll_desc is made
    // (poller::open): a fire may be reading them now. Requires: no other
    // set_deadline for d at the same time (timer_start writes the node).
    if (start)
        timer_start(&s.timer, t);
    else
        timer_stop(&s.timer);  // no deadline, or already past: no timer
}

void poll_desc::interrupt(io_dir d, io_status why) {
    wake_list woken;
    {
        lock_scope lk(mu);
        wake_all_locked(of(d), why, woken);
    }
    woken.ready_all();
}

// ---- poller -------------------------------------------------------------

namespace {
std::atomic<poller*> the_poller{nullptr};
}

poller& poller::instance() {
    static poller* p = [] {
        auto* made = new poller;  // never destroyed: descriptors outlive statics
        the_poller.store(made, std::memory_order_release);
        return made;
    }();
    return *p;
}

poller* poller::if_active() noexcept {
    return the_poller.load(std::memory_order_acquire);
}

poller::poller() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "goro: epoll_create1");
    kickfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (kickfd_ < 0) throw std::system_error(errno, std::generic_category(), "goro: eventfd");
    // Level-triggered: a kick stays visible until the sleeper it was meant
    // for drains it, whoever else polls meanwhile (a busy worker's
    // non-blocking poll must not swallow it).
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the kick
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, kickfd_, &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "goro: epoll_ctl(eventfd)");
}

poll_desc* poller::open(int fd, bool persistent) {
    poll_desc* pd;
    {
        lock_scope lk(pool_mu_);
        pd = free_;
        if (pd) free_ = pd->next_free;
    }
    if (!pd) {
        pd = new poll_desc;
        for (io_dir d : {io_dir::read, io_dir::write}) {
            pd->of(d).timer.pd = pd;
            pd->of(d).timer.dir = d;
            pd->of(d).timer.fire = &deadline_fired;
        }
    }
    {
        lock_scope lk(pd->mu);
        pd->fd = fd;
        pd->closing = false;
        pd->persistent = persistent;
        pd->next_free = nullptr;
        for (poll_desc::side& s : pd->sides) {
            s.ready = false;
            s.expired = false;
            s.deadline = clock::time_point::max();
        }
    }
    if (persistent) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = pd;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            int e = errno;
            close(pd);
            throw std::system_error(e, std::generic_category(), "goro: epoll_ctl(ADD)");
        }
        // wait_readable(fd) (io.cpp) finds this poll_desc from now on. A
        // one-shot one left there for an earlier file with this number goes
        // back to the pool (that file is closed: nobody may wait on it).
        std::atomic<poll_desc*>* entry;
        try {
            entry = table_entry(fd);
        } catch (...) {  // out of memory for the table's chunk
            ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
            close(pd);
            throw;
        }
        if (entry)
            if (poll_desc* old = entry->exchange(pd, std::memory_order_acq_rel))
                if (!old->persistent) close(old);
    }
    return pd;
}

void poller::close(poll_desc* pd) noexcept {
    wake_list woken;
    int fd;
    {
        lock_scope lk(pd->mu);
        pd->closing = true;
        for (poll_desc::side& s : pd->sides) wake_all_locked(s, io_status::closed, woken);
        fd = pd->fd;
    }
    woken.ready_all();
    for (poll_desc::side& s : pd->sides) timer_stop(&s.timer);
    if (pd->persistent && fd >= 0) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        if (std::atomic<poll_desc*>* entry = table_entry(fd, /*make=*/false)) {
            poll_desc* mine = pd;
            entry->compare_exchange_strong(mine, nullptr, std::memory_order_acq_rel);
        }
    }
    lock_scope lk(pool_mu_);
    pd->next_free = free_;
    free_ = pd;
}

poll_desc* poller::for_fd(int fd) {
    std::atomic<poll_desc*>* slot = table_entry(fd);
    if (!slot)
        throw std::system_error(EBADF, std::generic_category(), "goro: descriptor out of range");
    std::atomic<poll_desc*>& entry = *slot;
    // A goro::net socket's own (persistent) poll_desc when fd is one: a
    // one-shot arming of fd would replace the socket's registration.
    poll_desc* pd = entry.load(std::memory_order_acquire);
    if (pd) return pd;
    poll_desc* fresh = open(fd, false);
    if (entry.compare_exchange_strong(pd, fresh, std::memory_order_acq_rel)) return fresh;
    close(fresh);
    return pd;
}

// One-shot arming: the union of the directions waited on, re-armed on every
// wait (MOD; ADD when the kernel has forgotten the descriptor, e.g. because
// it was closed and its number reused). False when the descriptor cannot
// be armed — not pollable (a regular file: EPERM) or not open (EBADF) —
// and no readiness will ever come from epoll: the caller reports its
// waiters ready, so that their I/O call itself says what is wrong.
// Requires pd->mu.
bool poller::arm_oneshot(poll_desc* pd) noexcept {
    const int saved_errno = errno;  // runs on the waiting goroutine
    epoll_event ev{};
    ev.events = EPOLLONESHOT | EPOLLRDHUP;
    if (!pd->of(io_dir::read).waiters.empty()) ev.events |= EPOLLIN;
    if (!pd->of(io_dir::write).waiters.empty()) ev.events |= EPOLLOUT;
    ev.data.ptr = pd;
    const bool armed = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, pd->fd, &ev) == 0 ||
                       (errno == ENOENT && ::epoll_ctl(epfd_, EPOLL_CTL_ADD, pd->fd, &ev) == 0);
    errno = saved_errno;
    return armed;
}

int poller::poll(std::int64_t deadline, bool sleeper) noexcept {
    int timeout_ms = 0;
    if (deadline == no_deadline) {
        timeout_ms = -1;
    } else if (deadline > 0) {
        std::int64_t left = deadline - now_ns();
        // Round up: waking before the deadline costs a second sleep.
        timeout_ms =
            left <= 0
                ? 0
                : static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 1 << 30));
    }
    last_poll_.store(real_now_ns(), std::memory_order_relaxed);
    epoll_event events[max_events];
    int n = ::epoll_wait(epfd_, events, max_events, timeout_ms);
    if (n <= 0) return 0;
    int readied = 0;
    for (int i = 0; i < n; ++i) {
        auto* pd = static_cast<poll_desc*>(events[i].data.ptr);
        if (!pd) {  // the kick: only the sleeper consumes it
            std::uint64_t v;
            if (sleeper)
                while (::read(kickfd_, &v, sizeof v) > 0) {
                }
            continue;
        }
        const std::uint32_t e = events[i].events;
        wake_list woken;
        {
            lock_scope lk(pd->mu);
            for (io_dir d : {io_dir::read, io_dir::write}) {
                if (!(e & (d == io_dir::read ? read_events : write_events))) continue;
                poll_desc::side& s = pd->of(d);
                const int n_woken = wake_all_locked(s, io_status::ready, woken);
                if (n_woken == 0) s.ready = true;  // nobody waits: keep the edge
                readied += n_woken;
            }
            // One-shot: re-arm for the directions still waited on.
            if (!pd->persistent && !pd->closing &&
                (!pd->of(io_dir::read).waiters.empty() || !pd->of(io_dir::write).waiters.empty()) &&
                !arm_oneshot(pd))
                for (io_dir d : {io_dir::read, io_dir::write})
                    readied += wake_all_locked(pd->of(d), io_status::ready, woken);
        }
        woken.ready_all();
    }
    if (readied > 0 && tracing()) [[unlikely]]
        trace_poller_wake(readied);
    return readied;
}

void poller::kick() noexcept {
    const int saved_errno = errno;  // a goroutine may be the waker
    std::uint64_t one = 1;
    ssize_t ignored = ::write(kickfd_, &one, sizeof one);
    (void)ignored;
    errno = saved_errno;
}

void poller::poll_if_due(std::int64_t now, std::int64_t interval) noexcept {
    if (!has_waiters()) return;
    std::int64_t last = last_poll_.load(std::memory_order_relaxed);
    if (now - last < interval) return;
    // One worker at a time: the others skip this round.
    if (!last_poll_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
    poll(0, false);
}

}  // namespace goro::detail
