// fibers/context_switch.cpp — stack switching over Boost.Context fcontext,
// with sanitizer announcements. Each switch passes a `packet` naming the
// suspending side; the resuming side stores the suspended fcontext into it,
// so a fiber_context always holds the context of a *suspended* fiber.
#include "fibers/context_switch.hpp"

#include <boost/context/detail/fcontext.hpp>

#if defined(GORO_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GORO_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

namespace bctx = boost::context::detail;

namespace {

struct packet {
    fiber_context* from;
    fiber_context* to;
    void* data;
};

// Runs on the resumed side, first thing after a jump lands.
inline void* landed(bctx::transfer_t t, [[maybe_unused]] void** own_fake_stack) {
    auto* in = static_cast<packet*>(t.data);
#if defined(GORO_ASAN)
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(own_fake_stack ? *own_fake_stack : nullptr, &bottom, &size);
    if (!in->from->stack_bottom) {
        in->from->stack_bottom = bottom;
        in->from->stack_size = size;
    }
#endif
    in->from->fctx = t.fctx;
    return in->data;
}

inline void announce(fiber_context& from, fiber_context& to, [[maybe_unused]] bool exiting) {
#if defined(GORO_ASAN)
    __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.stack_bottom,
                                   to.stack_size);
#endif
#if defined(GORO_TSAN)
    __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
}

void trampoline(bctx::transfer_t t) {
    auto* in = static_cast<packet*>(t.data);
    fiber_context* self = in->to;
    void* data = landed(t, nullptr);
    self->entry(data);
    __builtin_unreachable();  // entry ends with a switch that never returns
}

}  // namespace

void make_fiber(fiber_context& to, std::uintptr_t lo, std::uintptr_t hi, void (*entry)(void*)) {
    hi &= ~std::uintptr_t{15};
    to.fctx = bctx::make_fcontext(reinterpret_cast<void*>(hi), hi - lo, &trampoline);
    to.entry = entry;
    to.stack_bottom = reinterpret_cast<const void*>(lo);
    to.stack_size = hi - lo;
    to.asan_fake_stack = nullptr;
#if defined(GORO_TSAN)
    to.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void init_thread_fiber(fiber_context& self) {
    self = fiber_context{};
#if defined(GORO_TSAN)
    self.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void* switch_to(fiber_context& from, fiber_context& to, void* data, bool from_exiting) {
    packet p{&from, &to, data};
    announce(from, to, from_exiting);
    bctx::transfer_t t = bctx::jump_fcontext(static_cast<bctx::fcontext_t>(to.fctx), &p);
    return landed(t, &from.asan_fake_stack);
}

void destroy_fiber([[maybe_unused]] fiber_context& c) {
#if defined(GORO_TSAN)
    if (c.tsan_fiber) __tsan_destroy_fiber(c.tsan_fiber);
    c.tsan_fiber = nullptr;
#endif
}

}  // namespace goro::detail
