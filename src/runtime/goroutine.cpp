// runtime/goroutine.cpp — a goroutine's life: spawn (take a stack slot,
// build the record and closure at its top, make it runnable), run (the
// fiber entry), and exit (give the slot back to the worker's cache).
//
// Invariants: a record's state is `free` exactly when its slot is on a free
// list; the closure is destroyed on the goroutine's own stack before exit;
// the slot is released by the worker after the final switch, never by the
// goroutine itself.
#include <cstdint>
#include <new>
#include <string>
#include <thread>

#include "goro/detail/park.hpp"
#include "goro/detail/spawn.hpp"
#include "goro/errors.hpp"
#include "goro/runtime.hpp"
#include "runtime/exit.hpp"
#include "sanitizers/hooks.hpp"
#include "scheduler/scheduler.hpp"
#include "stacks/stack_config.hpp"

namespace goro::detail {

void check_stack_canary_on_exit(goroutine* g) noexcept;  // diagnostics/panic.cpp

namespace {

constexpr std::uint64_t id_block = 1024;

std::uint64_t next_goroutine_id(scheduler* s, worker* w) noexcept {
    if (!w) return s->next_id_block.fetch_add(1, std::memory_order_relaxed);
    if (w->next_id == w->id_limit) {
        w->next_id = s->next_id_block.fetch_add(id_block, std::memory_order_relaxed);
        w->id_limit = w->next_id + id_block;
    }
    return w->next_id++;
}

// Builds (or resets) the record at the top of slot, with room for a closure.
[[gnu::always_inline]] inline spawn_slot prepare_record(stack_slot* slot, std::size_t size,
                                                        std::size_t align) noexcept {
    goroutine* g = record_of(slot);
    // After the last frames of the stack's previous goroutine (TSan).
    san::tsan_acquire(g);
    if (!slot->has_record.load(std::memory_order_relaxed)) {
        ::new (g) goroutine;
        slot->has_record.store(true, std::memory_order_release);
    } else {
        // Reuse: reset field by field; the park word keeps its episode count
        // and stays claimed (it was claimed when the last goroutine here woke).
        g->ctx = fiber_context{};
        g->next = nullptr;
        g->reason.store(wait_reason::none, std::memory_order_relaxed);
        g->unwind_requested = false;
        g->unwinds_thrown.store(0, std::memory_order_relaxed);
        g->shutdown_generation = 0;
        g->park_bit = 0;
        g->waiting_on.store(nullptr, std::memory_order_relaxed);
        g->action = switch_action::exit;
        g->unlock = nullptr;
        g->unlock_arg = nullptr;
        g->wake_token = nullptr;
        g->rescued_from = nullptr;
    }
    g->slot = slot;
    g->stack_lo = slot->lo;
    g->guarded = slot->guarded();
    g->is_goroutine = true;
    std::uintptr_t storage = (reinterpret_cast<std::uintptr_t>(g) - size) & ~(align - 1);
    g->closure = reinterpret_cast<void*>(storage);
    return {g, g->closure};
}

// The slot goes back where it came from: a sized one to the pool's sized
// list, a slab's to the worker's cache (or the shared pool).
void release_slot(worker* w, stack_slot* slot) noexcept {
    if (slot->sized) [[unlikely]]
        stack_pool::instance().release_sized(slot);
    else if (w)
        w->stacks.release(slot);
    else
        stack_pool::instance().release(slot);
}

}  // namespace

spawn_slot spawn_prepare(std::size_t size, std::size_t align) {
    ensure_runtime();
    worker* w = this_worker();
    return prepare_record(w ? w->stacks.acquire() : stack_pool::instance().acquire(), size, align);
}

spawn_slot spawn_prepare_sized(std::size_t size, std::size_t align, std::size_t stack_size,
                               const char* who) {
    if (stack_size != 0 && (stack_size < min_stack_size || stack_size > max_stack_size))
        throw misuse_error(
            std::string(who) + ": spawn_options::stack_size = " + std::to_string(stack_size) +
            ": out of range (expected 0 for the runtime's size, or " +
            std::to_string(min_stack_size) + ".." + std::to_string(max_stack_size) + " bytes)");
    ensure_runtime();
    stack_pool& pool = stack_pool::instance();
    const std::size_t bytes = (stack_size + page_size - 1) & ~(page_size - 1);
    if (bytes == 0 || bytes == pool.slot_size()) return spawn_prepare(size, align);
    return prepare_record(pool.acquire_sized(bytes), size, align);
}

void spawn_abandon(goroutine* g) noexcept {
    g->state.store(g_state::free, std::memory_order_release);
    release_slot(this_worker(), g->slot);
}

void spawn_commit(goroutine* g, void (*entry)(void*), const goro::source_location& where) noexcept {
    // From a plain thread, the runtime may end meanwhile; the use keeps the
    // one we commit to alive (or gives us the next one).
    runtime_use use(true);
    scheduler* s = use.get();
    worker* w = this_worker();
    g->entry = entry;
    g->where = where;
    if (shutting_down()) [[unlikely]]
        if (const goroutine* parent = this_goroutine_record())
            g->shutdown_generation =
                parent->shutdown_generation +
                (parent->unwinds_thrown.load(std::memory_order_relaxed) > 0 ? 1 : 0);
    g->id = next_goroutine_id(s, w);
    g->low_water = 0;
    std::uintptr_t stack_top = reinterpret_cast<std::uintptr_t>(g->closure) & ~std::uintptr_t{63};
    make_fiber(g->ctx, g->slot->lo, stack_top, &goroutine_main);
    if (w)
        w->spawned.fetch_add(1, std::memory_order_seq_cst);
    else
        s->external_spawned.fetch_add(1, std::memory_order_seq_cst);
    san::tsan_release(g);  // the closure, to the goroutine (TSan)
    s->ready(g, true);
}

void goroutine_main(void* prev) {
    switched_in(prev);
    goroutine* g = this_goroutine_record();
    san::tsan_acquire(g);  // the spawner's closure (TSan)
    try {
        g->entry(g->closure);
    } catch (const goroutine_unwind&) {
        // Shutdown unwound it: destructors ran, nothing to report.
    } catch (const std::exception& e) {
        panic_escaped(g, e.what());
    } catch (...) {
        panic_escaped(g, "an exception not derived from std::exception");
    }
    check_stack_canary_on_exit(g);
    // Abandoned by a shutdown while it ran without blocking (its thread is
    // no worker any more: lifecycle.cpp, abandon_spinners): its record and
    // stack are never reused, and this thread has nowhere to go.
    // Read once: a shutdown forgets the thread only after tagging g in
    // `current`, which the switch below then finds (switch_out, execute).
    worker* w = this_worker();
    if (!w) [[unlikely]]
        freeze_lost_thread();
    g->lock_count = 0;  // exiting unlocks (the record is reused)
    g->pinned_to = nullptr;
    // TSan: this goroutine's frames, before the next closure on its stack
    // (spawn_prepare acquires g); at shutdown, before run() returns.
    san::tsan_release(g);
    if (shutting_down()) [[unlikely]]
        san::tsan_release(&g_shutting_down);
    g->action = switch_action::exit;
    set_state(g, state_bit(g_state::running), g_state::dead);
    w->owner->switch_out(w, g, /*exiting=*/true);
    __builtin_unreachable();
}

void release_goroutine(worker* w, goroutine* g) noexcept {
    destroy_fiber(g->ctx);
    stack_slot* slot = g->slot;
    std::uintptr_t low_water = g->low_water;
    if (san::asan()) [[unlikely]] {
        // Frames that never returned (the entry chain) left their redzones poisoned.
        std::uintptr_t from =
            slot->hi > slot->lo + hot_stack_bytes ? slot->hi - hot_stack_bytes : slot->lo;
        san::asan_unpoison(reinterpret_cast<void*>(from), slot->hi - from);
    }
    // Probe one release in 256 for deep use that never parked (see trim).
    // The first probe of a slot maps the zero page there (a fault): one in
    // 16 cost skynet 44k of its 145k page faults (1.1M goroutines).
    // (An unguarded slot's canary was checked in goroutine_main, on exit.)
    stack_pool::trim(slot, low_water, (w->releases++ & 255) == 0);
    set_state(g, state_bit(g_state::dead), g_state::free);
    if (worker* r = g->rescued_from) [[unlikely]]
        r->rescued_alive.fetch_sub(1, std::memory_order_relaxed);
    w->exited.fetch_add(1, std::memory_order_seq_cst);
    release_slot(w, slot);
    if (exit_watch.load(std::memory_order_seq_cst) != 0) [[unlikely]]
        exit_watched();
}

std::atomic<std::uint8_t> exit_watch{0};

void exit_watched() noexcept {
    scheduler* s = current_scheduler();
    const std::uint8_t why = exit_watch.load(std::memory_order_seq_cst);
    if (why & exit_watch_bits::shutdown) {
        s->exit_seq.fetch_add(1, std::memory_order_seq_cst);
        futex_wake(&s->exit_seq, 1);
    }
    // run() waits for the last goroutine after main's goro::exit: the exit
    // that leaves none readies it (claim: at most one of several exits that
    // all saw zero, or a detected deadlock, does).
    if ((why & exit_watch_bits::main_exited) && s->live() <= 0)
        if (parker* caller = s->run_caller.load(std::memory_order_acquire); caller && claim(caller))
            ready(caller);
}

// See spawn.hpp. A yield without the unwind check: go() is not an unwind
// point. The flag is the worker's (plain: only its thread touches it).
void spawn_yield_point() noexcept {
    goroutine* g = this_goroutine_record();
    if (!g) return;
    worker* w = this_worker();  // null: forgotten since (a spinner given up by a shutdown)
    if (!w || !w->spilled) [[likely]]
        return;
    w->spilled = false;
    if (shutting_down()) return;
    g->action = switch_action::yield_to_global;
    switch_away(g, reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)));
}

}  // namespace goro::detail

namespace goro {

void yield() {
    using namespace detail;
    goroutine* g = this_goroutine_record();
    if (!g) {
        std::this_thread::yield();
        return;
    }
    if (shutting_down() && must_unwind_now()) throw_unwind();
    g->action = switch_action::yield;
    switch_away(g, reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)));
}

void sleep_until(clock::time_point tp) {
    using namespace detail;
    if (tp <= goro::now()) return yield();
    if (!this_goroutine_record()) {
        std::this_thread::sleep_until(tp);
        return;
    }
    struct sleeper : timer_node {
        parker* p;
    } s;
    s.p = current_parker();
    s.fire = [](timer_node* t) {
        parker* p = static_cast<sleeper*>(t)->p;
        if (claim(p)) ready(p);
    };
    s.when = tp;
    this_goroutine_record()->sleep_until_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count(),
        std::memory_order_relaxed);
    begin_park(s.p);
    // The timer starts only once we are parked, so it cannot fire early.
    wake w = park(
        wait_reason::sleep,
        [](void* a) { timer_start(static_cast<sleeper*>(a), static_cast<sleeper*>(a)->when); }, &s);
    if (w == wake::unwind) {
        timer_stop(&s);
        throw_unwind();
    }
    // Woken by the fire, which may still be returning: wait until it is done.
    timer_settle(&s);
}

void lock_os_thread() {
    using namespace detail;
    goroutine* g = this_goroutine_record();
    if (!g) return;  // a plain thread is its own thread already
    if (g->lock_count == UINT32_MAX) throw misuse_error("goro::lock_os_thread: nested too deeply");
    if (g->lock_count++ == 0) g->pinned_to = this_worker();
}

void unlock_os_thread() noexcept {
    detail::goroutine* g = detail::this_goroutine_record();
    if (!g || g->lock_count == 0) return;
    if (--g->lock_count == 0) g->pinned_to = nullptr;
}

void exit() {
    using namespace detail;
    if (!this_goroutine_record())
        throw misuse_error(
            "goro::exit: called outside a goroutine (only a goroutine can end itself)");
    if (running_uncaught_exceptions() > 0)
        throw misuse_error(
            "goro::exit: called while an exception is in flight (in a destructor during "
            "unwinding)");
    throw exit_unwind{};
}

bool in_goroutine() noexcept {
    return detail::this_goroutine_record() != nullptr;
}

std::uint64_t this_goroutine::id() noexcept {
    detail::goroutine* g = detail::this_goroutine_record();
    return g ? g->id : 0;
}

}  // namespace goro
