// goro/detail/relaxed.hpp — a field written only under its owner's lock and
// also read without it, by a peek whose answer is a hint that is checked
// again under the lock (select's first pass, channels.md). Relaxed atomic
// loads and stores: plain moves on x86-64 and AArch64, and no data race for
// the memory model or for TSan. An increment is a load and a store, not an
// atomic read-modify-write: only the lock holder writes.
#pragma once

#include <atomic>
#include <type_traits>

namespace goro::detail {

template <class T>
class relaxed {
  public:
    constexpr relaxed(T v = T{}) noexcept : v_(v) {}
    relaxed(const relaxed&) = delete;
    relaxed& operator=(const relaxed&) = delete;

    operator T() const noexcept { return v_.load(std::memory_order_relaxed); }
    relaxed& operator=(T v) noexcept {
        v_.store(v, std::memory_order_relaxed);
        return *this;
    }
    T operator->() const noexcept requires std::is_pointer_v<T> { return *this; }
    relaxed& operator++() noexcept { return *this = static_cast<T>(T(*this) + 1); }
    relaxed& operator--() noexcept { return *this = static_cast<T>(T(*this) - 1); }

  private:
    std::atomic<T> v_;
};

}  // namespace goro::detail
