// scheduler/timer_heap.hpp — the runtime's pending timers, ordered by `when`.
//
// A 4-ary min-heap of (when, slot). The keys sit in the heap array, so a sift
// compares contiguous memory; the position of each entry is kept in a dense
// slot table (slot -> node, position), so a sift rewrites that table and never
// the nodes themselves. Timer nodes often live on goroutine stacks a megabyte
// apart: touching one costs a TLB miss and a cache miss, and a sift through a
// heap of 100k sleepers moves ~8 entries. A node is touched only when it
// enters or leaves the heap.
//
// Invariants: node->heap_slot == npos iff the node is not in the heap; for a
// slot s in use, slots[s].node->heap_slot == s and h[slots[s].pos].slot == s.
// Free slots are reused last-freed first (their table rows are still cached).
// Not thread-safe: the scheduler guards it with timer_mu.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "goro/detail/timer_node.hpp"

namespace goro::detail {

class timer_heap {
  public:
    static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

    bool empty() const noexcept { return h_.empty(); }
    std::size_t size() const noexcept { return h_.size(); }
    // Earliest deadline (ns since the clock's epoch); requires !empty().
    std::int64_t top_when() const noexcept { return h_.front().when; }
    timer_node* top() const noexcept { return slots_[h_.front().slot].node; }

    static bool contains(const timer_node* t) noexcept { return t->heap_slot != npos; }

    void push(timer_node* t, std::int64_t when) {
        std::uint32_t s;
        if (!free_.empty()) {
            s = free_.back();
            free_.pop_back();
        } else {
            s = static_cast<std::uint32_t>(slots_.size());
            slots_.push_back({});
            // remove() must not allocate: it runs under noexcept callers.
            free_.reserve(slots_.capacity());
        }
        slots_[s].node = t;
        t->heap_slot = s;
        h_.push_back({when, s});
        up(h_.size() - 1);
    }

    // Takes t out; requires contains(t).
    void remove(timer_node* t) noexcept { remove_at(slots_[t->heap_slot].pos); }

    // Takes out up to max nodes due at `now` (when <= now), earliest first,
    // into out; returns how many. The nodes are touched only after all of
    // them are out, each prefetched as it leaves, so their cache and TLB
    // misses overlap instead of following one another.
    std::size_t pop_due(std::int64_t now, timer_node** out, std::size_t max) noexcept {
        std::size_t n = 0;
        while (n < max && !h_.empty() && h_.front().when <= now) {
            const std::uint32_t s = h_.front().slot;
            timer_node* t = slots_[s].node;
            __builtin_prefetch(t, 1);
            out[n++] = t;
            release_at(0, s);
        }
        for (std::size_t i = 0; i < n; ++i) out[i]->heap_slot = npos;
        return n;
    }

    // Empties the heap, calling f(node) for each node it held.
    template <class F>
    void clear(F&& f) {
        for (const entry& e : h_) {
            timer_node* t = slots_[e.slot].node;
            t->heap_slot = npos;
            f(t);
        }
        h_.clear();
        slots_.clear();
        free_.clear();
    }

  private:
    struct entry {
        std::int64_t when;
        std::uint32_t slot;
    };
    struct slot_row {
        timer_node* node = nullptr;
        std::size_t pos = 0;
    };

    void set(std::size_t i, entry e) noexcept {
        h_[i] = e;
        slots_[e.slot].pos = i;
    }
    void up(std::size_t i) noexcept {
        const entry e = h_[i];
        while (i > 0) {
            const std::size_t p = (i - 1) / 4;
            if (!(e.when < h_[p].when)) break;
            set(i, h_[p]);
            i = p;
        }
        set(i, e);
    }
    void down(std::size_t i) noexcept {
        const entry e = h_[i];
        const std::size_t n = h_.size();
        for (;;) {
            const std::size_t c = 4 * i + 1;
            if (c >= n) break;
            std::size_t best = c;
            for (std::size_t k = c + 1; k < c + 4 && k < n; ++k)
                if (h_[k].when < h_[best].when) best = k;
            if (!(h_[best].when < e.when)) break;
            set(i, h_[best]);
            i = best;
        }
        set(i, e);
    }
    void remove_at(std::size_t i) noexcept {
        const std::uint32_t s = h_[i].slot;
        slots_[s].node->heap_slot = npos;
        release_at(i, s);
    }
    // Removes entry i (slot s) without touching its node.
    void release_at(std::size_t i, std::uint32_t s) noexcept {
        free_.push_back(s);  // never reallocates: reserved in push
        const entry last = h_.back();
        h_.pop_back();
        if (last.slot == s) return;
        set(i, last);
        down(i);
        up(slots_[last.slot].pos);
    }

    std::vector<entry> h_;
    std::vector<slot_row> slots_;
    std::vector<std::uint32_t> free_;
};

}  // namespace goro::detail
