// goro/pool.hpp — Go's sync.Pool: a cache of reusable objects that
// goroutines take and give back, to spare allocations on hot paths.
//
//   goro::pool<std::string> bufs([] { auto s = std::make_unique<std::string>();
//                                     s->reserve(4096); return s; });
//   std::unique_ptr<std::string> b = bufs.get();   // reused, or made by New
//   b->clear();  ...use it...
//   bufs.put(std::move(b));
//
// get() takes any object the pool holds — none in particular, in any state a
// previous user left it in — or, when it holds none, returns New's result
// (nullptr without a New function). put(p) gives p back (a null p is
// ignored, as Go ignores Put(nil)).
//
// Objects may be dropped at any time: a pool keeps at most a few objects per
// worker thread (7) plus a shared overflow (128); what put() cannot keep is
// destroyed at once, and the pool's destructor destroys what it holds. So
// never rely on getting back what you put, and do not put objects that own
// something that must be released explicitly (Go: "any item stored in the
// Pool may be removed automatically at any time without notification").
// Unlike Go's, a pool is never emptied behind your back by a collector: an
// idle pool keeps up to that many objects alive until it is destroyed.
//
// Cost: a goroutine gets and puts through its worker's own slots, with no
// lock and no atomic read-modify-write (goroutines are switched only at
// blocking calls, so nothing else runs on that worker meanwhile); only when
// those are empty or full does it touch the shared overflow, under a lock.
// Plain threads (and workers past the 64th) always use the overflow. Safe
// from any goroutine or thread.
//
// New: a callable returning std::unique_ptr<T>, or a T (moved into a new
// heap object). It runs outside every lock, on the caller; it may block.
// An empty New (null function pointer, empty std::function) throws
// goro::misuse_error naming goro::pool. A pool is neither copyable nor
// movable; destroy it only when no get() or put() is in progress.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "goro/detail/require_callable.hpp"

namespace goro {

namespace detail {

// The type-erased pool (src/sync/pool.cpp): holds void* objects, destroys
// the ones it drops with `destroy`.
class pool_core {
  public:
    explicit pool_core(void (*destroy)(void*) noexcept);
    ~pool_core();
    pool_core(const pool_core&) = delete;
    pool_core& operator=(const pool_core&) = delete;

    void* get() noexcept;          // an object, or null when empty
    void put(void* obj) noexcept;  // keeps obj, or destroys it

  private:
    struct shard;
    struct overflow;
    static constexpr unsigned max_shards = 64;
    shard* local_shard() noexcept;

    void (*destroy_)(void*) noexcept;
    shard* shards_[max_shards] = {};  // each written and read by its worker's thread only
    overflow* overflow_;
};

}  // namespace detail

// A cache of reusable T objects (Go's sync.Pool), with an optional New
// function; the file's comment says what it keeps and for how long.
template <class T>
class pool {
  public:
    // Without New: get() returns nullptr when the pool is empty.
    pool() = default;

    // With New: get() returns new_fn()'s result (a std::unique_ptr<T>, or a
    // T to move into one) when the pool is empty.
    template <class F>
    requires std::is_invocable_v<F&>
    explicit pool(F new_fn) {
        detail::require_callable(new_fn, "goro::pool");
        using R = std::invoke_result_t<F&>;
        static_assert(std::is_convertible_v<R, std::unique_ptr<T>> || std::is_constructible_v<T, R>,
                      "goro::pool<T>: New must return std::unique_ptr<T> or a T");
        // Shared so that std::function can copy it: New itself may be move-only.
        auto f = std::make_shared<F>(std::move(new_fn));
        if constexpr (std::is_convertible_v<R, std::unique_ptr<T>>)
            new_ = [f]() -> std::unique_ptr<T> { return (*f)(); };
        else
            new_ = [f] { return std::make_unique<T>((*f)()); };
    }
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // An object from the pool, else New's (nullptr without New).
    std::unique_ptr<T> get() {
        if (void* p = core_.get()) return std::unique_ptr<T>(static_cast<T*>(p));
        if (new_) return new_();
        return nullptr;
    }

    // Gives p back; the pool may keep it or destroy it.
    void put(std::unique_ptr<T> p) noexcept {
        if (p) core_.put(p.release());
    }

  private:
    static void destroy(void* p) noexcept { delete static_cast<T*>(p); }

    detail::pool_core core_{&pool::destroy};
    std::function<std::unique_ptr<T>()> new_;
};

}  // namespace goro
