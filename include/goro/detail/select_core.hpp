// goro/detail/select_core.hpp — the type-erased select under goro::select.
#pragma once

#include <cstddef>
#include <cstdint>

#include "goro/detail/chan_core.hpp"

namespace goro::detail {

struct select_op {
    chan_core* core = nullptr;  // null: a nil channel, never ready
    void* elem = nullptr;       // send: value to move from; recv: raw storage for a T
    bool is_send = false;
    bool received = false;  // out, recv: a value was constructed in elem (else: closed)
};

// Runs one select over ops[0, n). Returns the index of the op that ran, or
// -1 when has_default and none was ready. Throws closed_channel_error when the
// chosen op is a send on a closed channel. With n == 0 and no default it
// blocks forever (until shutdown unwinds the caller).
std::ptrdiff_t select_impl(select_op* ops, std::size_t n, bool has_default);

// Storage for the ops of a dynamic select: on the stack up to 16 cases.
struct small_ops {
    select_op local[16];
    select_op* data;
    explicit small_ops(std::size_t n) : data(n <= 16 ? local : new select_op[n]) {}
    ~small_ops() {
        if (data != local) delete[] data;
    }
    small_ops(const small_ops&) = delete;
    small_ops& operator=(const small_ops&) = delete;
};

}  // namespace goro::detail
