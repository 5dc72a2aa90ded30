// diagnostics/snapshot.hpp — goroutines copied out of their records, for the
// dump and the leak check. The copy is racy by design (relaxed reads of
// atomics, under the stack pool's lock only): a goroutine that starts or
// exits meanwhile may be missed or seen in a stale state.
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

#include "fibers/goroutine.hpp"
#include "goro/source_location.hpp"

namespace goro::detail {

struct goroutine_snapshot {
    std::uint64_t id;
    const void* record;  // identity beside the id (ids restart with each run())
    g_state state;
    wait_reason reason;        // none unless waiting
    const void* object;        // what it waits on, if known
    std::int64_t since;        // coarse ns when it parked; 0: unknown
    std::int64_t sleep_until;  // ns, for a sleep
    goro::source_location where;
    bool abandoned;  // by a shutdown: stuck forever, already reported
};

// Every goroutine alive (not free, not dead).
std::vector<goroutine_snapshot> take_snapshots();

// Writes `all` as goro::dump_goroutines does: grouped by state, wait, object
// and creation site, with counts. Takes no runtime lock.
void write_grouped(std::ostream& os, const std::vector<goroutine_snapshot>& all);

}  // namespace goro::detail
