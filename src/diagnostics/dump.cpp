// diagnostics/dump.cpp — goro::dump_goroutines, the SIGQUIT dump, and the
// names of states and wait reasons. The dump walks every stack slot ever
// carved (each holds its goroutine's record at its top), so spawning keeps
// no registry. It copies the records first (under the stack pool's lock,
// reading atomics relaxed: diagnostics) and formats after, so it never
// holds a lock workers need while it writes; a goroutine that starts or
// exits meanwhile may be missed. The SIGQUIT handler only sets a flag: the
// monitor thread writes the dump (a handler may not allocate).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "diagnostics/snapshot.hpp"
#include "goro/runtime.hpp"
#include "scheduler/scheduler.hpp"
#include "signal/subscriptions.hpp"

namespace goro::detail {

const char* to_string(wait_reason r) noexcept {
    switch (r) {
        case wait_reason::none:
            return "";
        case wait_reason::chan_send:
            return "chan send";
        case wait_reason::chan_recv:
            return "chan receive";
        case wait_reason::chan_send_nil:
            return "chan send (nil chan)";
        case wait_reason::chan_recv_nil:
            return "chan receive (nil chan)";
        case wait_reason::select:
            return "select";
        case wait_reason::select_no_cases:
            return "select (no cases)";
        case wait_reason::sleep:
            return "sleep";
        case wait_reason::wait_group:
            return "wait_group wait";
        case wait_reason::mutex:
            return "mutex lock";
        case wait_reason::rw_mutex:
            return "rw_mutex lock";
        case wait_reason::cond:
            return "cond wait";
        case wait_reason::semaphore:
            return "semaphore acquire";
        case wait_reason::once:
            return "once call";
        case wait_reason::errgroup:
            return "errgroup";
        case wait_reason::io_read:
            return "IO wait (read)";
        case wait_reason::io_write:
            return "IO wait (write)";
        case wait_reason::run:
            return "run";
        case wait_reason::blocking:
            return "blocking call";
    }
    return "?";
}

const char* to_string(g_state s) noexcept {
    switch (s) {
        case g_state::free:
            return "free";
        case g_state::runnable:
            return "runnable";
        case g_state::running:
            return "running";
        case g_state::waiting:
            return "waiting";
        case g_state::dead:
            return "dead";
    }
    return "?";
}

}  // namespace goro::detail

namespace goro::detail {

std::atomic<bool> dump_requested{false};

std::vector<goroutine_snapshot> take_snapshots() {
    std::vector<goroutine_snapshot> out;
    for_each_goroutine_record([&](goroutine* g) {
        const g_state st = g->state.load(std::memory_order_acquire);
        if (st == g_state::free || st == g_state::dead) return;
        goroutine_snapshot sn{g->id,
                              g,
                              st,
                              g->reason.load(std::memory_order_relaxed),
                              g->waiting_on.load(std::memory_order_relaxed),
                              g->parked_since.load(std::memory_order_relaxed),
                              g->sleep_until_ns.load(std::memory_order_relaxed),
                              g->where,
                              g->abandoned.load(std::memory_order_relaxed)};
        if (st != g_state::waiting) sn.reason = wait_reason::none;
        out.push_back(sn);
    });
    return out;
}

namespace {

// "3 ms", "2.5 s", "4 min" for a duration in ns.
std::string duration_text(std::int64_t ns) {
    char buf[32];
    if (ns < 1'000'000)
        std::snprintf(buf, sizeof buf, "%lld us", static_cast<long long>(ns / 1000));
    else if (ns < 10'000'000'000)
        std::snprintf(buf, sizeof buf, "%lld ms", static_cast<long long>(ns / 1'000'000));
    else if (ns < 600'000'000'000)
        std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ns / 1'000'000'000));
    else
        std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(ns / 60'000'000'000));
    return buf;
}

// What a goroutine waits on, as the dump shows it.
std::string waits_on(const goroutine_snapshot& sn, std::int64_t now) {
    std::ostringstream os;
    switch (sn.reason) {
        case wait_reason::chan_send:
        case wait_reason::chan_recv:
            os << "chan " << sn.object;
            break;
        case wait_reason::mutex:
        case wait_reason::rw_mutex:
        case wait_reason::wait_group:
        case wait_reason::cond:
        case wait_reason::semaphore:
        case wait_reason::once:
            if (sn.object) os << sn.object;
            break;
        case wait_reason::sleep:
            if (sn.sleep_until > now) os << "wakes in " << duration_text(sn.sleep_until - now);
            break;
        default:
            break;
    }
    return os.str();
}

}  // namespace

void dump_goroutines_to_stderr() noexcept {
    try {
        std::ostringstream os;
        goro::dump_goroutines(os);
        const std::string s = os.str();
        ssize_t ignored = ::write(2, s.data(), s.size());
        (void)ignored;
    } catch (...) {
    }
}

namespace {

void on_sigquit(int) {
    const int saved = errno;
    dump_requested.store(true, std::memory_order_release);  // the monitor dumps,
    wake_monitors();  // even one asleep while every worker is idle
    errno = saved;
}

}  // namespace

void install_sigquit_dump() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = &on_sigquit;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        // Through the signal registry: while a signal_notify holds SIGQUIT,
        // the dump is what its last signal_stop restores.
        set_signal_fallback(SIGQUIT, sa);
    });
}

}  // namespace goro::detail

namespace goro::detail {

void write_grouped(std::ostream& os, const std::vector<goroutine_snapshot>& all) {
    const std::int64_t now = now_ns();            // a bubble's virtual time, for sleeps
    const std::int64_t real_now = real_now_ns();  // for how long each has waited
    // Group: same state, reason, object and creation site.
    struct group {
        const goroutine_snapshot* first;
        std::vector<std::uint64_t> ids;
        std::int64_t longest = 0;
    };
    std::vector<group> groups;
    std::map<std::tuple<int, int, const void*, std::string, unsigned>, std::size_t> index;
    for (const goroutine_snapshot& sn : all) {
        auto key = std::make_tuple(static_cast<int>(sn.state) + (sn.abandoned ? 8 : 0),
                                   static_cast<int>(sn.reason),
                                   sn.reason == wait_reason::sleep ? nullptr : sn.object,
                                   std::string(sn.where.file_name()), sn.where.line());
        auto [it, fresh] = index.emplace(key, groups.size());
        if (fresh) groups.push_back(group{&sn, {}, 0});
        group& gr = groups[it->second];
        gr.ids.push_back(sn.id);
        if (sn.state == g_state::waiting && sn.since > 0)
            gr.longest = std::max(gr.longest, real_now - sn.since);
    }
    for (const group& gr : groups) {
        const goroutine_snapshot& sn = *gr.first;
        if (gr.ids.size() == 1)
            os << "goroutine " << sn.id << " [" << to_string(sn.state);
        else
            os << gr.ids.size() << " goroutines [" << to_string(sn.state);
        if (sn.state == g_state::waiting && sn.reason != wait_reason::none)
            os << ", " << to_string(sn.reason);
        if (gr.longest > 0) os << ", " << duration_text(gr.longest);
        if (sn.abandoned) os << ", abandoned at shutdown";
        os << "]";
        if (std::string on = waits_on(sn, now); !on.empty()) os << ": " << on;
        if (gr.ids.size() > 1) {
            os << ": ids";
            for (std::size_t k = 0; k < gr.ids.size() && k < 8; ++k) os << ' ' << gr.ids[k];
            if (gr.ids.size() > 8) os << " ...";
        }
        os << "\n    created at " << sn.where.file_name() << ':' << sn.where.line() << " in "
           << sn.where.function_name() << '\n';
    }
}

}  // namespace goro::detail

namespace goro {

void dump_goroutines(std::ostream& os) {
    const std::vector<detail::goroutine_snapshot> all = detail::take_snapshots();
    detail::write_grouped(os, all);  // after the snapshot, holding no lock
    os << all.size() << " goroutine(s)\n";
}

}  // namespace goro
