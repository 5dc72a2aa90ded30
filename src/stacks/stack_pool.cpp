// stacks/stack_pool.cpp — slab allocation of goroutine stacks. See the header
// for the protection schemes and the invariants.
//
// Every slab is one ~1 GiB mapping (at least 16 slots). Slots are carved
// from it lazily, `carve_batch` at a time, when the free list runs dry: the
// guard of each carved slot is installed then (guard markers in one
// process_madvise call per batch, or mprotect per slot while the budget
// lasts) and its top page committed (one more call per batch), and page
// tables are only built for the part of a slab in use.
#include "stacks/stack_pool.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>

#include "stacks/stack_config.hpp"

// Linux 6.13's guard markers; Debian 12's headers predate them. (Guards are
// never removed: slabs live as long as the process.)
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

namespace goro::detail {

namespace {

std::size_t read_max_map_count() {
    std::ifstream f("/proc/sys/vm/max_map_count");
    std::size_t n = 0;
    if (f >> n && n > 0) return n;
    return 65530;
}

constexpr std::size_t slab_bytes = std::size_t{1} << 30;
constexpr std::size_t min_slab_slots = 16;
constexpr std::size_t carve_batch = 64;
// Address range one page-table page maps (x86-64 and arm64 with 4 KiB pages).
constexpr std::uintptr_t pte_span = std::uintptr_t{2} << 20;

bool probe_guard_regions() noexcept {
    void* p =
        ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    // EINVAL: a kernel without guard markers.
    bool ok = ::madvise(p, page_size, MADV_GUARD_INSTALL) == 0;
    if (ok) {
        // Trust only a marker that faults: the kernel's own read of the page
        // (copying it into a pipe) must fail with EFAULT.
        int fds[2];
        ok = ::pipe2(fds, O_CLOEXEC) == 0;
        if (ok) {
            ok = ::write(fds[1], p, 1) < 0 && errno == EFAULT;
            ::close(fds[0]);
            ::close(fds[1]);
        }
    }
    ::munmap(p, page_size);
    return ok;
}

}  // namespace

bool guard_regions_supported() noexcept {
    static const bool supported = probe_guard_regions();
    return supported;
}

stack_pool& stack_pool::instance() {
    static stack_pool* pool = new stack_pool;  // never destroyed: stacks outlive statics
    return *pool;
}

void stack_pool::configure(std::size_t stack_size) {
    const stack_config c = read_stack_config(stack_size, default_stack_size);  // may throw
    lock_scope lk(mu_);
    apply_locked(c);
}

void stack_pool::apply_locked(const stack_config& c) {
    if (scheme_ == guard_scheme::unset) {
        scheme_ = c.guard_regions && guard_regions_supported() ? guard_scheme::regions
                                                               : guard_scheme::budget;
        // A quarter of the mapping cap, two mappings per guarded slot.
        guard_budget_ = read_max_map_count() / 4 / 2;
        if (c.guarded_stacks_set) guard_budget_ = std::min(guard_budget_, c.guarded_stacks);
    }
    if (c.stack_size != slot_size_) {
        // The free slots of the old size are shelved, not dropped: a later
        // run of that size takes them back. Dropped, each change of size
        // left the committed pages of its free slots behind for good (a
        // batch of top pages per change since they are committed ahead).
        shelved_.reserve(total_slots_);  // release_batch never allocates
        shelved_.insert(shelved_.end(), free_.begin(), free_.end());
        free_.clear();
        const auto back =
            std::stable_partition(shelved_.begin(), shelved_.end(),
                                  [&](const stack_slot* s) { return s->bytes() != c.stack_size; });
        free_.insert(free_.end(), back, shelved_.end());  // capacity >= total_slots_
        shelved_.erase(back, shelved_.end());
        slot_size_ = c.stack_size;
    }
}

slab& stack_pool::map_slab_locked() {
    const std::size_t capacity = std::max(min_slab_slots, slab_bytes / slot_size_);
    const std::size_t bytes = capacity * slot_size_;
    if (slabs_.size() == slabs_.capacity()) slabs_.reserve(2 * slabs_.size() + 8);
    auto descriptors = std::make_unique<stack_slot[]>(capacity);
    void* mem = ::mmap(nullptr, bytes + pte_span, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        std::fprintf(stderr, "goro: cannot reserve %zu bytes for goroutine stacks\n", bytes);
        throw std::bad_alloc();
    }
    // Start half a page-table span past a span boundary. Slots of 2 MiB (or
    // any even number of MiB) then have their boundaries mid-span: a slot's
    // guard or canary page shares its page-table page with the top of the
    // slot below, instead of needing a 4 KiB one of its own. (1 MiB slots
    // lie within one span either way.) The slack stays reserved, untouched:
    // unmapping it would leave gaps that keep consecutive slabs from
    // merging into one mapping.
    const auto raw = reinterpret_cast<std::uintptr_t>(mem);
    const std::uintptr_t base =
        ((raw + pte_span / 2 + pte_span - 1) & ~(pte_span - 1)) - pte_span / 2;
    slab s;
    s.base = base;
    s.capacity = capacity;
    s.slot_size = slot_size_;
    s.slots = descriptors.release();
    slabs_.push_back(s);  // capacity reserved above: cannot throw
    return slabs_.back();
}

namespace {

// An error that says this kernel or sandbox will never take the call.
bool refused_for_good(int err) noexcept {
    return err == EINVAL || err == ENOSYS || err == EPERM;
}

// Applies `advice` to the n pages at pages[i] in one process_madvise call
// (Linux 6.13 accepts any advice for the calling process; older kernels
// refuse most). Returns how many pages from the first were advised, 0 when
// the call is refused or fails. The pidfd is opened each time, so a forked
// child never advises its parent's memory.
std::size_t advise_pages(const std::uintptr_t* pages, std::size_t n, int advice,
                         bool& ok) noexcept {
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
    if (!ok || n == 0) return 0;
    iovec iov[carve_batch];
    n = std::min(n, carve_batch);
    for (std::size_t i = 0; i < n; ++i) iov[i] = {reinterpret_cast<void*>(pages[i]), page_size};
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
    if (fd < 0) {
        // Out of descriptors (EMFILE, ENFILE) is for now: only a kernel or
        // sandbox without pidfds turns the batched calls off for good.
        if (refused_for_good(errno)) ok = false;
        return 0;
    }
    const long r = ::syscall(SYS_process_madvise, fd, iov, n, advice, 0u);
    const int err = errno;
    ::close(fd);
    if (r < 0 && refused_for_good(err)) ok = false;
    return r > 0 ? static_cast<std::size_t>(r) / page_size : 0;
#else
    (void)pages;
    (void)n;
    (void)advice;
    ok = false;
    return 0;
#endif
}

}  // namespace

void stack_pool::install_guard_regions(stack_slot* d, std::size_t n) noexcept {
    std::uintptr_t pages[carve_batch];
    for (std::size_t i = 0; i < n; ++i) pages[i] = d[i].lo - page_size;
    const std::size_t done =
        n > 1 ? advise_pages(pages, n, MADV_GUARD_INSTALL, process_madvise_ok_) : 0;
    for (std::size_t i = 0; i < n; ++i) {
        // A slot whose marker cannot be installed (out of memory for page
        // tables) is left unguarded: it falls back to the canary.
        if (i < done ||
            ::madvise(reinterpret_cast<void*>(pages[i]), page_size, MADV_GUARD_INSTALL) == 0)
            d[i].guard = stack_guard::region;
    }
}

void stack_pool::populate_tops(const stack_slot* d, std::size_t n) noexcept {
    // The first spawn on a slot writes the goroutine record into its top
    // page, so that page is always used. Committing the batch's top pages
    // in one system call costs about 1 us a page on this project's VM,
    // where the first-touch fault of each costs 12-21 us (and 2 us on the
    // VM it ran on before): docs/performance.md, "Stack pages committed a
    // batch at a time". Where the kernel refuses (before 6.13), the pages
    // fault in as before.
    std::uintptr_t pages[carve_batch];
    for (std::size_t i = 0; i < n; ++i) pages[i] = d[i].hi - page_size;
    advise_pages(pages, n, MADV_POPULATE_WRITE, populate_ok_);
}

void stack_pool::carve_locked(slab& s, std::size_t n) {
    // release_batch must never allocate: room for every slot, grown geometrically.
    if (free_.capacity() < total_slots_ + n)
        free_.reserve(std::max(total_slots_ + n, 2 * free_.capacity()));
    stack_slot* d = s.slots + s.slot_count;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uintptr_t start = s.base + (s.slot_count + i) * s.slot_size;
        d[i].lo = start + page_size;  // the lowest page is the guard or the canary
        d[i].hi = start + s.slot_size;
        d[i].guard = stack_guard::none;
    }
    populate_tops(d, n);
    if (scheme_ == guard_scheme::regions) {
        install_guard_regions(d, n);
    } else {
        for (std::size_t i = 0; i < n && guard_budget_ > 0; ++i) {
            if (::mprotect(reinterpret_cast<void*>(d[i].lo - page_size), page_size, PROT_NONE) != 0)
                break;
            d[i].guard = stack_guard::page;
            --guard_budget_;
        }
    }
    // Push in reverse so the lowest slot is handed out first.
    for (std::size_t i = n; i-- > 0;) {
        free_.push_back(&d[i]);
        guarded_slots_ += d[i].guarded() ? 1 : 0;
    }
    s.slot_count += n;
    total_slots_ += n;
}

void stack_pool::grow_locked() {
    if (slot_size_ == 0) apply_locked(read_stack_config(0, default_stack_size));
    // The newest slab of this size with room (sizes may alternate between runs).
    slab* s = nullptr;
    for (auto it = slabs_.rbegin(); it != slabs_.rend() && !s; ++it)
        if (it->slot_size == slot_size_ && it->slot_count < it->capacity) s = &*it;
    if (!s) s = &map_slab_locked();
    carve_locked(*s, std::min(carve_batch, s->capacity - s->slot_count));
}

stack_slot* stack_pool::acquire() {
    stack_slot* s = nullptr;
    acquire_batch(&s, 1);
    return s;
}

void stack_pool::release(stack_slot* s) noexcept {
    release_batch(&s, 1);
}

std::size_t stack_pool::acquire_batch(stack_slot** out, std::size_t n) {
    lock_scope lk(mu_);
    if (free_.empty()) grow_locked();
    const std::size_t got = std::min(n, free_.size());
    std::copy(free_.end() - static_cast<std::ptrdiff_t>(got), free_.end(), out);
    free_.resize(free_.size() - got);
    return got;
}

void stack_pool::release_batch(stack_slot** in, std::size_t n) noexcept {
    lock_scope lk(mu_);
    for (std::size_t i = 0; i < n; ++i) {
        if (in[i]->bytes() != slot_size_) {
            // Of an older size (released after the change): shelved, room
            // reserved when the size changed.
            if (shelved_.size() < shelved_.capacity()) shelved_.push_back(in[i]);
            continue;
        }
        free_.push_back(in[i]);
    }
}

stack_slot* stack_pool::acquire_sized(std::size_t bytes) {
    lock_scope lk(mu_);
    if (slot_size_ == 0) apply_locked(read_stack_config(0, default_stack_size));
    for (auto it = sized_free_.rbegin(); it != sized_free_.rend(); ++it)
        if ((*it)->bytes() == bytes) {
            stack_slot* s = *it;
            sized_free_.erase(std::next(it).base());
            return s;
        }
    // Room first, so that nothing can fail once the mapping exists.
    sized_.reserve(sized_.size() + 1);
    sized_free_.reserve(sized_.size() + 1);
    auto slot = std::make_unique<stack_slot>();
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        std::fprintf(stderr, "goro: cannot reserve %zu bytes for a goroutine stack\n", bytes);
        throw std::bad_alloc();
    }
    const auto base = reinterpret_cast<std::uintptr_t>(mem);
    slot->lo = base + page_size;
    slot->hi = base + bytes;
    slot->sized = true;
    void* guard = reinterpret_cast<void*>(base);
    if (scheme_ == guard_scheme::regions && ::madvise(guard, page_size, MADV_GUARD_INSTALL) == 0) {
        slot->guard = stack_guard::region;
    } else if (::mprotect(guard, page_size, PROT_NONE) == 0) {
        // Outside the slabs' budget: a sized stack is a mapping of its own
        // anyway, and there are few of them. (Out of mappings: the canary.)
        slot->guard = stack_guard::page;
    }
    sized_.push_back(slot.get());
    return slot.release();
}

void stack_pool::release_sized(stack_slot* s) noexcept {
    lock_scope lk(mu_);
    sized_free_.push_back(s);  // capacity reserved by acquire_sized
}

bool stack_pool::trim(stack_slot* s, std::uintptr_t low_water, bool probe) noexcept {
    const std::uintptr_t keep_from = (s->hi - hot_stack_bytes) & ~(page_size - 1);
    if (keep_from <= s->lo) return false;
    // Deep use shows in the lowest stack pointer seen at a switch, or in the
    // word just below the hot region (zero until something wrote it). The
    // probe is a system call, so callers ask for it only now and then (hot
    // slots are reused LIFO, so a deep one is probed soon enough). It asks
    // mincore first: reading a page nothing wrote would fault in the zero
    // page, 12-21 us on this project's VM against about 1 us for mincore.
    // The range starts at lo, above the guard page; MADV_DONTNEED would not
    // remove a guard marker even if it covered one.
    bool deep = low_water != 0 && low_water < keep_from;
    if (!deep && probe) {
        const std::uintptr_t word = keep_from - sizeof(void*);
        unsigned char resident = 0;
        if (::mincore(reinterpret_cast<void*>(word & ~(page_size - 1)), page_size, &resident) ==
                0 &&
            (resident & 1))
            deep = *reinterpret_cast<volatile std::uintptr_t*>(word) != 0;
    }
    if (deep) ::madvise(reinterpret_cast<void*>(s->lo), keep_from - s->lo, MADV_DONTNEED);
    return deep;
}

stack_slot* stack_cache::acquire() {
    if (n_ == 0) n_ = stack_pool::instance().acquire_batch(items_, batch);
    return items_[--n_];
}

void stack_cache::release(stack_slot* s) noexcept {
    if (n_ == capacity) {
        stack_pool::instance().release_batch(items_ + (capacity - batch), batch);
        n_ -= batch;
    }
    items_[n_++] = s;
}

void stack_cache::flush() noexcept {
    stack_pool::instance().release_batch(items_, n_);
    n_ = 0;
}

}  // namespace goro::detail
