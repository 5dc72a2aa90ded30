// batch_semaphore: process batches of different sizes concurrently under a
// memory budget, with a weighted goro::semaphore (golang.org/x/sync/semaphore).
//
// 200 records are cut into batches of 1 to 6 records. Each record costs one
// unit of an 8-unit budget while its batch is processed, so a batch
// acquires as many permits as it has records: several small batches run
// together, a large one waits until enough of the budget is free. Waiters
// are served first come, first served, so a large batch is not starved by a
// stream of small ones. The batches are started by a wait_group; a plain
// std::atomic tracks the units in use, to check the budget.
//
// Then a batch of 12 records — more than the whole budget — asks with a
// context and a 20 ms deadline: acquire(ctx, n) gives up with the
// context's error (a blocking acquire(n) beyond the size would be a
// goro::misuse_error, where Go would wait forever).
//
// Checked: every record was processed once (the sum of the record ids
// matches), the units in use never exceeded 8, and the oversized batch gave
// up with deadline_exceeded.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::int64_t budget = 8;
constexpr int records = 200;

struct batch {
    int first, count;  // records first .. first + count - 1
};

std::vector<batch> cut_into_batches() {
    std::vector<batch> batches;
    for (int first = 0, k = 0; first < records; ++k) {
        const int count = std::min(1 + (k * 7) % 6, records - first);  // 1..6, varied
        batches.push_back({first, count});
        first += count;
    }
    return batches;
}

}  // namespace

int main() {
    return goro::run([] {
        goro::semaphore units(budget);
        std::atomic<std::int64_t> in_use{0}, max_in_use{0}, sum{0};
        const std::vector<batch> batches = cut_into_batches();

        goro::wait_group wg;
        for (const batch& b : batches)
            wg.go([&, b] {
                units.acquire(b.count);  // parks until b.count units are free
                const std::int64_t now = in_use.fetch_add(b.count) + b.count;
                for (auto m = max_in_use.load();
                     now > m && !max_in_use.compare_exchange_weak(m, now);) {
                }
                goro::sleep_for(1ms * b.count);  // "process" the batch
                for (int r = b.first; r < b.first + b.count; ++r) sum.fetch_add(r);
                in_use.fetch_sub(b.count);
                units.release(b.count);
            });
        wg.wait();
        const std::int64_t want = std::int64_t{records} * (records - 1) / 2;
        std::printf(
            "%zu batches of 1..6 records: record sum %lld (want %lld), at most %lld of "
            "%lld units in use\n",
            batches.size(), static_cast<long long>(sum.load()), static_cast<long long>(want),
            static_cast<long long>(max_in_use.load()), static_cast<long long>(budget));

        // A batch larger than the whole budget, with a deadline.
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 20ms);
        const std::error_code ec = units.acquire(ctx, 12);
        cancel();
        std::printf("a 12-record batch with a 20 ms deadline: %s\n",
                    ec ? ec.message().c_str() : "acquired (unexpected)");

        const bool ok = sum.load() == want && max_in_use.load() <= budget &&
                        ec == goro::errc::deadline_exceeded;
        std::printf("batch semaphore: %s\n", ok ? "all checks passed" : "FAILED");
        return ok ? 0 : 1;
    });
}
