// diagnostics/trace.cpp — recording (goro::trace::start/stop and the
// scheduler's hooks). The lanes, the busy-flag handshake with stop() and the
// invariants are described in trace.hpp; trace_json.cpp formats the result.
//
// Flow ids: (session & 0xFFFF) << 48 | lane << 32 | a per-lane count. The
// session bits let a run ignore a flow recorded by an earlier trace; the
// written id is the low 48 bits (exact as a JavaScript number).
#include "diagnostics/trace.hpp"

#include <cerrno>
#include <mutex>
#include <string>
#include <system_error>

#include "goro/detail/spin_mutex.hpp"
#include "goro/errors.hpp"
#include "goro/trace.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

std::atomic<bool> trace_on{false};

namespace {

// A lane holds at most this many events (56 bytes each: 56 MiB); later
// ones are counted as dropped.
constexpr std::size_t lane_cap = std::size_t{1} << 20;
constexpr unsigned max_lanes = 4096;  // runtime/lifecycle.cpp's max_procs

struct lane {
    std::atomic<bool> busy{false};  // a worker appends (see trace.hpp)
    std::vector<trace_event> events;
    std::uint64_t dropped = 0;
    std::uint32_t next_flow = 0;
    std::uint32_t run_session = 0;  // the session in which run_start was taken
    std::int64_t run_start = 0;     // ns, real clock
};

std::mutex control_mu;          // start/stop; never taken by a worker
std::FILE* out_file = nullptr;  // guarded by control_mu
std::string out_path;           // guarded by control_mu
std::atomic<std::uint32_t> session{0};
std::atomic<std::int64_t> t0{0};  // the real clock at start(), ns
std::atomic<lane*> worker_lanes[max_lanes];
std::mutex plain_mu;  // the plain threads' lane
lane plain_lane;      // guarded by plain_mu

lane* worker_lane(unsigned index) noexcept {
    if (index >= max_lanes) return nullptr;
    lane* l = worker_lanes[index].load(std::memory_order_acquire);
    if (!l) {
        // Only worker `index` of the running runtime gets here (lanes are
        // never freed: an allocation failure drops the event instead).
        l = new (std::nothrow) lane;
        if (l) worker_lanes[index].store(l, std::memory_order_release);
    }
    return l;
}

void push(lane& l, const trace_event& e) noexcept {
    if (l.events.size() >= lane_cap) {
        ++l.dropped;
        return;
    }
    try {
        l.events.push_back(e);
    } catch (...) {
        ++l.dropped;
    }
}

// Runs f(lane, lane id) on the calling thread's lane if the trace is on.
template <class F>
void record(worker* w, F&& f) noexcept {
    if (w) {
        lane* l = worker_lane(w->index);
        if (!l) return;
        l->busy.store(true, std::memory_order_seq_cst);
        if (trace_on.load(std::memory_order_seq_cst)) f(*l, w->index);
        l->busy.store(false, std::memory_order_release);
        return;
    }
    std::lock_guard<std::mutex> lk(plain_mu);
    if (trace_on.load(std::memory_order_seq_cst)) f(plain_lane, trace_plain_tid);
}

std::int64_t since_start(std::int64_t now) noexcept {
    return now - t0.load(std::memory_order_relaxed);
}

trace_event instant(trace_kind k, std::uint64_t gid, std::uint64_t arg) noexcept {
    trace_event e;
    e.ts = since_start(real_now_ns());
    e.kind = k;
    e.gid = gid;
    e.arg = arg;
    return e;
}

constexpr std::uint64_t flow_mask = (std::uint64_t{1} << 48) - 1;

}  // namespace

void trace_run_begin(worker* w, goroutine* g) noexcept {
    record(w, [&](lane& l, unsigned) {
        const std::uint32_t ses = session.load(std::memory_order_relaxed);
        l.run_start = real_now_ns();
        l.run_session = ses;
        const std::uint64_t flow = g->trace_flow;
        g->trace_flow = 0;
        if (flow != 0 && (flow >> 48) == (ses & 0xFFFF)) {
            trace_event e;
            e.ts = since_start(l.run_start);
            e.kind = trace_kind::flow_end;
            e.gid = g->id;
            e.arg = flow & flow_mask;
            push(l, e);
        }
    });
}

void trace_run_end(worker* w, goroutine* g) noexcept {
    record(w, [&](lane& l, unsigned) {
        const std::int64_t now = real_now_ns();
        const bool begun = l.run_session == session.load(std::memory_order_relaxed);
        const std::int64_t start = begun ? l.run_start : t0.load(std::memory_order_relaxed);
        trace_event e;
        e.kind = trace_kind::run;
        e.ts = since_start(start);
        e.dur = now - start;
        e.gid = g->id;
        e.file = g->where.file_name();
        e.func = g->where.function_name();
        e.line = g->where.line();
        e.stop.action = static_cast<std::uint8_t>(g->action);
        e.stop.reason = static_cast<std::uint8_t>(g->reason.load(std::memory_order_relaxed));
        push(l, e);
        if (g->action == switch_action::park) {
            e.kind = trace_kind::park;
            e.ts = since_start(now);
            e.dur = 0;
            push(l, e);
        }
    });
}

void trace_readied(goroutine* g, bool spawned) noexcept {
    record(this_worker(), [&](lane& l, unsigned id) {
        const std::uint64_t ses = session.load(std::memory_order_relaxed) & 0xFFFF;
        const std::uint64_t flow =
            ses << 48 | std::uint64_t{id & 0xFFFF} << 32 | std::uint64_t{++l.next_flow};
        trace_event e = instant(trace_kind::flow_start, g->id, flow & flow_mask);
        e.stop.action = spawned ? 1 : 0;
        push(l, e);
        g->trace_flow = flow;
    });
}

void trace_steal(worker* thief, worker* victim, goroutine* g) noexcept {
    record(thief,
           [&](lane& l, unsigned) { push(l, instant(trace_kind::steal, g->id, victim->index)); });
}

void trace_worker_sleep(worker* w, bool watcher) noexcept {
    record(w, [&](lane& l, unsigned) { push(l, instant(trace_kind::sleep, 0, watcher ? 1 : 0)); });
}

void trace_worker_wake(worker* w, wake_reason why) noexcept {
    record(w, [&](lane& l, unsigned) {
        push(l, instant(trace_kind::wake, 0, static_cast<std::uint64_t>(why)));
    });
}

void trace_poller_wake(int readied) noexcept {
    record(this_worker(), [&](lane& l, unsigned) {
        push(l, instant(trace_kind::poll, 0, static_cast<std::uint64_t>(readied)));
    });
}

namespace {

// Every lane's events, in place (the trace is off: no append is in flight
// once each busy flag is down).
trace_data collect() {
    trace_data d;
    for (unsigned i = 0; i < max_lanes; ++i) {
        lane* l = worker_lanes[i].load(std::memory_order_acquire);
        if (!l) continue;
        while (l->busy.load(std::memory_order_seq_cst)) cpu_relax();
        if (!l->events.empty()) d.lanes.push_back({i, &l->events});
        d.dropped += l->dropped;
    }
    std::lock_guard<std::mutex> lk(plain_mu);
    if (!plain_lane.events.empty()) d.lanes.push_back({trace_plain_tid, &plain_lane.events});
    d.dropped += plain_lane.dropped;
    return d;
}

// Empties every lane, keeping its memory for the next trace.
void clear_lanes() noexcept {
    for (unsigned i = 0; i < max_lanes; ++i)
        if (lane* l = worker_lanes[i].load(std::memory_order_acquire)) {
            l->events.clear();
            l->dropped = 0;
        }
    std::lock_guard<std::mutex> lk(plain_mu);
    plain_lane.events.clear();
    plain_lane.dropped = 0;
}

}  // namespace

}  // namespace goro::detail

namespace goro::trace {

void start(const std::string& path) {
    using namespace detail;
    std::lock_guard<std::mutex> lk(control_mu);
    if (trace_on.load(std::memory_order_relaxed))
        throw misuse_error("goro::trace::start(\"" + path +
                           "\"): a trace is already running (to \"" + out_path +
                           "\"); call goro::trace::stop() first");
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        throw std::system_error(errno, std::generic_category(),
                                "goro::trace::start: cannot open \"" + path + "\" for writing");
    out_file = f;
    out_path = path;
    session.fetch_add(1, std::memory_order_relaxed);
    t0.store(real_now_ns(), std::memory_order_relaxed);
    trace_on.store(true, std::memory_order_seq_cst);
}

void stop() {
    using namespace detail;
    std::lock_guard<std::mutex> lk(control_mu);
    if (!trace_on.load(std::memory_order_relaxed))
        throw misuse_error(
            "goro::trace::stop(): no trace is running (call goro::trace::start first)");
    trace_on.store(false, std::memory_order_seq_cst);
    const trace_data d = collect();
    std::FILE* f = out_file;
    out_file = nullptr;
    const bool written = write_trace_json(f, d);
    const int write_errno = errno;
    clear_lanes();
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed)
        throw std::system_error(written ? errno : write_errno, std::generic_category(),
                                "goro::trace::stop: cannot write \"" + out_path + "\"");
}

bool running() noexcept {
    return detail::trace_on.load(std::memory_order_relaxed);
}

}  // namespace goro::trace
