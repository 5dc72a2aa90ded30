// diagnostics/dump.cpp — goro::dump_goroutines and the names of states and
// wait reasons. The dump walks every stack slot ever carved (each holds its
// goroutine's record at its top), so spawning keeps no registry. It reads
// live records without stopping them: a goroutine that starts or exits
// during the dump may be shown torn or missed.
#include <ostream>

#include "goro/runtime.hpp"
#include "scheduler/scheduler.hpp"

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

namespace goro {

void dump_goroutines(std::ostream& os) {
    using namespace detail;
    std::size_t n = 0;
    stack_pool::instance().for_each_slot([&](stack_slot& slot) {
        if (!slot.has_record.load(std::memory_order_acquire)) return;
        goroutine* g = record_of(&slot);
        g_state st = g->state.load(std::memory_order_acquire);
        if (st == g_state::free || st == g_state::dead) return;
        ++n;
        os << "goroutine " << g->id << " [" << to_string(st);
        const wait_reason why = g->reason.load(std::memory_order_relaxed);
        if (st == g_state::waiting && why != wait_reason::none) os << ", " << to_string(why);
        os << "]: created at " << g->where.file_name() << ':' << g->where.line() << " in "
           << g->where.function_name() << '\n';
    });
    os << n << " goroutine(s)\n";
}

}  // namespace goro
