// goro/chan.hpp — typed channels: Go's `chan T`, `chan<- T`, `<-chan T`.
//
//   auto ch = goro::make_chan<int>(16);        // buffered; make_chan<int>() is unbuffered
//   goro::go([ch] { for (int i = 0; i < 3; ++i) ch.send(i); ch.close(); });
//   for (int v : ch) use(v);                   // receives until closed and drained
//
// A chan is a cheap copyable handle with shared ownership; copies refer to
// the same channel and compare equal. A default-constructed chan is the nil
// channel. Buffered channels are FIFO; blocked senders and receivers are
// served in arrival order; a value goes straight from a sender to a waiting
// receiver. Everything works from goroutines (which park) and from plain OS
// threads (which block).
//
//   state   | send                      | recv                        | close
//   --------+---------------------------+-----------------------------+--------------------------
//   nil     | blocks forever            | blocks forever              | throws closed_channel_error
//   open    | blocks until taken/buffer | blocks until a value        | wakes every waiter
//   closed  | throws closed_channel_err | drains, then nullopt        | throws closed_channel_error
//
// try_send/try_recv never block (Go's select with default): a failed
// try_send leaves its argument untouched; try_send on a closed channel
// throws, like a send. Close wakes everyone: blocked receivers get nullopt,
// blocked senders throw closed_channel_error.
// Memory: a send happens-before the receive that gets its value completes;
// close happens-before a receive that observes it.
// Requires: T's move constructor is noexcept (it runs under the channel
// lock, where a throw could not be recovered from); checked at compile time.
// Lifetime: a blocked send, receive or select keeps the channel alive, so
// the last handle may go away while goroutines wait on it.
//
// Identity: handles to the same channel compare equal, a chan and its
// send_chan / recv_chan views included; handles are totally ordered (by the
// channel's address, the nil channel first) and std::hash-able, so they are
// keys of std::map, std::set, std::unordered_map and std::unordered_set.
//
// Ranges: chan<T> and recv_chan<T> are std::ranges::input_range (not
// sized: size() is len(ch)). Their iterator receives a value only when one
// is looked at — compared with the end, or dereferenced — and never one it
// does not hand out, so `ch | std::views::take(3)` receives exactly 3
// values and leaves the rest in the channel; begin() receives nothing.
// Comparing with the end blocks until a value arrives or the channel is
// closed and drained (then it is the end).
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <compare>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "goro/detail/chan_core.hpp"
#include "goro/errors.hpp"
#include "goro/unit.hpp"

namespace goro {

template <class T>
class chan;
template <class T>
class send_chan;
template <class T>
class recv_chan;

// The outcome of try_recv: a value, or why not (empty: open and nothing ready;
// closed: closed and drained). Go's `v, ok := <-ch` under select-default.
template <class T>
class try_recv_result {
  public:
    // value: a value was received; empty: the channel is open and had none
    // ready; closed: it is closed and drained.
    enum class status : unsigned char { value, empty, closed };

    // Whether a value was received; which failure it was otherwise.
    explicit operator bool() const noexcept { return value_.has_value(); }
    bool has_value() const noexcept { return value_.has_value(); }
    bool empty() const noexcept { return status_ == status::empty; }
    bool closed() const noexcept { return status_ == status::closed; }
    status state() const noexcept { return status_; }

    // The value received. Requires: has_value().
    T& operator*() & { return *value_; }
    const T& operator*() const& { return *value_; }
    T&& operator*() && { return std::move(*value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    // Throws std::bad_optional_access when no value was received.
    T& value() & { return value_.value(); }
    const T& value() const& { return value_.value(); }
    T&& value() && { return std::move(value_.value()); }
    // The value as an optional (moved out).
    std::optional<T> take() && { return std::move(value_); }

    // For goro's own code: a result of the given status.
    static try_recv_result make(status s, std::optional<T> v) {
        try_recv_result r;
        r.status_ = s;
        r.value_ = std::move(v);
        return r;
    }

  private:
    status status_ = status::empty;
    std::optional<T> value_;
};

namespace detail {

// How goro's own code builds a handle around a core.
struct chan_access {
    template <class H>
    static H make(chan_ref c) {
        return H(std::move(c));
    }
};

// What a channel's element type must be.
template <class T>
inline constexpr bool chan_element_ok =
    std::is_object_v<T> && !std::is_const_v<T> && std::is_nothrow_move_constructible_v<T> &&
    std::is_nothrow_destructible_v<T>;

template <class T>
class chan_handle {
    static_assert(std::is_object_v<T> && !std::is_const_v<T>,
                  "goro::chan<T>: T must be a non-const object type");
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "goro::chan<T>: T's move constructor must be noexcept (values are moved under "
                  "the channel's lock, where a throw cannot be recovered from); declare it "
                  "noexcept, or send a std::unique_ptr<T> instead");
    static_assert(std::is_nothrow_destructible_v<T>,
                  "goro::chan<T>: T's destructor must not throw");

  public:
    using value_type = T;

    bool is_nil() const noexcept { return !core_; }
    std::size_t size() const noexcept { return chan_size(core_.get()); }
    // 0 for a timer's channel, which presents as unbuffered (Go 1.23).
    std::size_t capacity() const noexcept { return core_ && !core_->timer_chan ? core_->cap : 0; }
    chan_core* core() const noexcept { return core_.get(); }

    // Handles to the same channel compare equal (nil equals nil), whatever
    // their direction: a chan equals its send_chan and recv_chan views.
    friend bool operator==(const chan_handle& a, const chan_handle& b) noexcept {
        return a.core() == b.core();
    }
    // A total order by identity (the nil channel first), for ordered
    // containers; it says nothing about the channels' contents.
    friend std::strong_ordering operator<=>(const chan_handle& a, const chan_handle& b) noexcept {
        return std::compare_three_way{}(a.core(), b.core());
    }

  protected:
    chan_handle() = default;
    explicit chan_handle(chan_ref c) : core_(std::move(c)) {}

    // v is send()'s own parameter, moved from once, into the channel (a
    // second move here cost a move per send, and left a plain thread moving
    // a slow value before the channel could see it: Break19Bubble).
    void do_send(T& v) const {
        if (chan_send(core_.get(), &v, true) == op_result::closed)
            throw closed_channel_error("goro::chan::send: send on closed channel");
    }
    bool do_try_send(T& v) const { return chan_send(core_.get(), &v, false) == op_result::done; }
    // try_send of an lvalue: a copy is offered, so v stays untouched either way.
    bool do_try_send_copy(const T& v) const {
        static_assert(std::is_copy_constructible_v<T>,
                      "goro::chan::try_send: T is move-only and v is an lvalue; move it: "
                      "try_send(std::move(v)) (v is left untouched when it returns false)");
        if constexpr (std::is_copy_constructible_v<T>) {
            T copy(v);
            return do_try_send(copy);
        } else {
            return false;
        }
    }
    std::optional<T> do_recv() const {
        storage s;
        if (chan_recv(core_.get(), s.ptr(), true) != op_result::done) return std::nullopt;
        return s.take();
    }
    try_recv_result<T> do_try_recv() const {
        storage s;
        using st = typename try_recv_result<T>::status;
        switch (chan_recv(core_.get(), s.ptr(), false)) {
            case op_result::done:
                return try_recv_result<T>::make(st::value, s.take());
            case op_result::closed:
                return try_recv_result<T>::make(st::closed, std::nullopt);
            case op_result::would_block:
                break;
        }
        return try_recv_result<T>::make(st::empty, std::nullopt);
    }
    void do_close() const { chan_close(core_.get()); }

    // Raw storage a receive constructs a T in.
    struct storage {
        alignas(T) unsigned char bytes[sizeof(T)];
        void* ptr() noexcept { return bytes; }
        std::optional<T> take() {
            T* p = std::launder(reinterpret_cast<T*>(bytes));
            std::optional<T> r(std::move(*p));
            p->~T();
            return r;
        }
    };

    chan_ref core_;

    template <class U>
    friend class chan_handle;
};

// The iterator of a channel range: an input iterator that receives lazily.
// A value is received when the iterator is compared with the end or
// dereferenced and holds none yet; ++ drops the value it holds (receiving
// and dropping one first if it holds none, so ranges::advance skips values
// as it should). So an algorithm that stops after n values (views::take,
// ranges::copy_n) receives exactly n.
template <class Handle, class T>
class chan_iterator {
  public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    chan_iterator() = default;
    explicit chan_iterator(const Handle* h) : h_(h) {}
    // Move-only values are handed out as rvalues so `for (T v : ch)` moves.
    // Requires: not at the end.
    decltype(auto) operator*() const {
        fill();
        if constexpr (std::is_copy_constructible_v<T>)
            return static_cast<T&>(*cur_);
        else
            return static_cast<T&&>(*cur_);
    }
    chan_iterator& operator++() {
        fill();  // a value not yet received is skipped, not left for the next ++
        cur_.reset();
        filled_ = false;
        return *this;
    }
    void operator++(int) { ++*this; }
    // Blocks until a value arrives (false) or the channel is closed and
    // drained (true).
    friend bool operator==(const chan_iterator& it, std::default_sentinel_t) {
        it.fill();
        return !it.cur_.has_value();
    }

  private:
    // Receives the value this position stands for, once.
    void fill() const {
        if (filled_) return;
        cur_ = h_->recv();
        filled_ = true;
    }
    const Handle* h_ = nullptr;
    // The input iterator's one position, received on first look; mutable
    // because looking (==, *) happens through const iterators.
    mutable std::optional<T> cur_;
    mutable bool filled_ = false;
};

}  // namespace detail

// chan<T>: send, receive and close.
template <class T>
class chan : public detail::chan_handle<T> {
    using base = detail::chan_handle<T>;

  public:
    chan() = default;  // the nil channel

    // Blocks until the value is taken or buffered. Throws
    // closed_channel_error if the channel is (or gets) closed.
    void send(T v) const { base::do_send(v); }
    // Never blocks: true if sent. On false, v is untouched.
    bool try_send(T&& v) const { return base::do_try_send(v); }
    bool try_send(const T& v) const { return base::do_try_send_copy(v); }
    // Blocks until a value arrives; nullopt once closed and drained.
    std::optional<T> recv() const { return base::do_recv(); }
    try_recv_result<T> try_recv() const { return base::do_try_recv(); }
    // Throws closed_channel_error on a closed or nil channel.
    void close() const { base::do_close(); }

    // The channel as a range: `for (T v : ch)` receives until it is closed and
    // drained (see Ranges at the top of this file).
    detail::chan_iterator<chan, T> begin() const { return detail::chan_iterator<chan, T>(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    explicit chan(detail::chan_ref c) : base(std::move(c)) {}
    friend struct detail::chan_access;
    friend class send_chan<T>;
    friend class recv_chan<T>;
};

// chan<- T: the sending end.
template <class T>
class send_chan : public detail::chan_handle<T> {
    using base = detail::chan_handle<T>;

  public:
    // The nil channel, or the sending end of a chan (implicit, as in Go).
    send_chan() = default;
    send_chan(const chan<T>& c) : base(c.core_) {}  // NOLINT: implicit, like Go
    // As chan<T>'s send, try_send and close.
    void send(T v) const { base::do_send(v); }
    bool try_send(T&& v) const { return base::do_try_send(v); }
    bool try_send(const T& v) const { return base::do_try_send_copy(v); }
    void close() const { base::do_close(); }

  private:
    explicit send_chan(detail::chan_ref c) : base(std::move(c)) {}
    friend struct detail::chan_access;
};

// <-chan T: the receiving end.
template <class T>
class recv_chan : public detail::chan_handle<T> {
    using base = detail::chan_handle<T>;

  public:
    // The nil channel, or the receiving end of a chan (implicit, as in Go).
    recv_chan() = default;
    recv_chan(const chan<T>& c) : base(c.core_) {}  // NOLINT: implicit, like Go
    // As chan<T>'s recv and try_recv, and a range like chan<T>.
    std::optional<T> recv() const { return base::do_recv(); }
    try_recv_result<T> try_recv() const { return base::do_try_recv(); }
    detail::chan_iterator<recv_chan, T> begin() const {
        return detail::chan_iterator<recv_chan, T>(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    explicit recv_chan(detail::chan_ref c) : base(std::move(c)) {}
    friend struct detail::chan_access;
};

// make(chan T, capacity): capacity 0 is unbuffered (rendezvous).
template <class T>
chan<T> make_chan(std::size_t capacity = 0) {
    return detail::chan_access::make<chan<T>>(
        detail::make_chan_core(&detail::elem_ops_for<T>, capacity));
}

}  // namespace goro

// size() is len(ch), the values buffered now, not the number the range will
// yield: a channel is not a std::ranges::sized_range (else views::take would
// stop after min(n, len(ch)) values, none for an unbuffered channel).
namespace std::ranges {
template <class T>
inline constexpr bool disable_sized_range<goro::chan<T>> = true;
template <class T>
inline constexpr bool disable_sized_range<goro::recv_chan<T>> = true;
}  // namespace std::ranges

// Hashes by identity: equal handles (a chan and its views) hash equal.
template <class T>
struct std::hash<goro::chan<T>> {
    std::size_t operator()(const goro::chan<T>& c) const noexcept {
        return std::hash<const void*>{}(c.core());
    }
};
template <class T>
struct std::hash<goro::send_chan<T>> {
    std::size_t operator()(const goro::send_chan<T>& c) const noexcept {
        return std::hash<const void*>{}(c.core());
    }
};
template <class T>
struct std::hash<goro::recv_chan<T>> {
    std::size_t operator()(const goro::recv_chan<T>& c) const noexcept {
        return std::hash<const void*>{}(c.core());
    }
};
