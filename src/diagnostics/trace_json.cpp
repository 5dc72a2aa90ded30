// diagnostics/trace_json.cpp — writes a recorded trace (trace.hpp) as
// Chrome/Perfetto trace-event JSON: {"traceEvents":[...]} with one event per
// line, timestamps in microseconds with nanosecond digits.
//
// Event shapes (pid 1; tid = worker index, 9999 = plain threads):
//   run    {"ph":"X","name":"goroutine N","cat":"goroutine","ts","dur",
//           "args":{"id","site","stop"}}
//   flow   {"ph":"s"|"f","name":"ready","cat":"wake","id"}; "f" has "bp":"e"
//          (it binds to the run that starts at its timestamp)
//   others {"ph":"i","s":"t","name":"steal"|"park"|"worker sleep"|
//           "worker wake"|"poller wake","cat":"sched","args":{...}}
// plus "M" metadata naming the process and each track. No lock is held:
// the events belong to the caller.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "diagnostics/trace.hpp"
#include "fibers/goroutine.hpp"

namespace goro::detail {

namespace {

std::string json_string(const char* s) {
    std::string out = "\"";
    for (; s && *s; ++s) {
        const unsigned char c = static_cast<unsigned char>(*s);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// ns as microseconds with three decimals.
std::string us(std::int64_t ns) {
    if (ns < 0) ns = 0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, ns / 1000, ns % 1000);
    return buf;
}

std::string stop_reason(trace_stop s) {
    switch (static_cast<switch_action>(s.action)) {
        case switch_action::park:
            return std::string("park: ") + to_string(static_cast<wait_reason>(s.reason));
        case switch_action::yield:
        case switch_action::yield_to_global:
            return "yield";
        case switch_action::exit:
            return "exit";
    }
    return "?";
}

const char* wake_name(std::uint64_t why) {
    switch (why) {
        case 1:
            return "spin";
        case 2:
            return "recheck";
        default:
            return "timeout";
    }
}

std::string site(const trace_event& e) {
    std::string s = e.file ? e.file : "?";
    s += ':' + std::to_string(e.line);
    if (e.func && *e.func) s += std::string(" in ") + e.func;
    return s;
}

std::string head(const char* ph, const std::string& name, const char* cat, unsigned tid,
                 std::int64_t ts) {
    return std::string("{\"ph\":\"") + ph + "\",\"name\":" + json_string(name.c_str()) +
           ",\"cat\":\"" + cat + "\",\"pid\":1,\"tid\":" + std::to_string(tid) +
           ",\"ts\":" + us(ts);
}

std::string instant(const char* name, unsigned tid, std::int64_t ts, const std::string& args) {
    return head("i", name, "sched", tid, ts) + ",\"s\":\"t\",\"args\":{" + args + "}}";
}

std::string format(const trace_event& e, unsigned tid) {
    const std::string g = "\"goroutine\":" + std::to_string(e.gid);
    switch (e.kind) {
        case trace_kind::run:
            return head("X", "goroutine " + std::to_string(e.gid), "goroutine", tid, e.ts) +
                   ",\"dur\":" + us(e.dur) + ",\"args\":{\"id\":" + std::to_string(e.gid) +
                   ",\"site\":" + json_string(site(e).c_str()) +
                   ",\"stop\":" + json_string(stop_reason(e.stop).c_str()) + "}}";
        case trace_kind::flow_start:
            return head("s", "ready", "wake", tid, e.ts) + ",\"id\":" + std::to_string(e.arg) +
                   ",\"args\":{" + g + ",\"spawn\":" + (e.stop.action ? "true" : "false") + "}}";
        case trace_kind::flow_end:
            return head("f", "ready", "wake", tid, e.ts) +
                   ",\"bp\":\"e\",\"id\":" + std::to_string(e.arg) + ",\"args\":{" + g + "}}";
        case trace_kind::steal:
            return instant("steal", tid, e.ts, g + ",\"from_worker\":" + std::to_string(e.arg));
        case trace_kind::park:
            return instant("park", tid, e.ts,
                           g + ",\"reason\":" +
                               json_string(to_string(static_cast<wait_reason>(e.stop.reason))));
        case trace_kind::sleep:
            return instant("worker sleep", tid, e.ts,
                           std::string("\"timer_watcher\":") + (e.arg ? "true" : "false"));
        case trace_kind::wake:
            return instant("worker wake", tid, e.ts,
                           std::string("\"reason\":\"") + wake_name(e.arg) + "\"");
        case trace_kind::poll:
            return instant("poller wake", tid, e.ts, "\"readied\":" + std::to_string(e.arg));
    }
    return {};
}

std::string track_name(unsigned tid) {
    return tid == trace_plain_tid ? "plain threads" : "worker " + std::to_string(tid);
}

}  // namespace

bool write_trace_json(std::FILE* f, const trace_data& d) {
    bool ok = std::fputs(
                  "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"goro\","
                  "\"dropped_events\":",
                  f) >= 0;
    ok = ok && std::fprintf(f, "%" PRIu64 "},\"traceEvents\":[\n", d.dropped) > 0;
    ok = ok && std::fputs(
                   "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,"
                   "\"args\":{\"name\":\"goro\"}}",
                   f) >= 0;
    for (const trace_lane_events& l : d.lanes) {
        ok = ok && std::fprintf(f,
                                ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%u,"
                                "\"args\":{\"name\":%s}}",
                                l.tid, json_string(track_name(l.tid).c_str()).c_str()) > 0;
        ok = ok && std::fprintf(f,
                                ",\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,"
                                "\"tid\":%u,\"args\":{\"sort_index\":%u}}",
                                l.tid, l.tid) > 0;
    }
    for (const trace_lane_events& l : d.lanes)
        for (const trace_event& e : *l.events) {
            if (!ok) break;
            ok = std::fputs(",\n", f) >= 0 && std::fputs(format(e, l.tid).c_str(), f) >= 0;
        }
    ok = ok && std::fputs("\n]}\n", f) >= 0;
    return ok && std::fflush(f) == 0;
}

}  // namespace goro::detail
