// goro/singleflight.hpp — golang.org/x/sync/singleflight: duplicate
// suppression. Callers asking for the same key while a call for it is in
// flight wait for that call and share its result instead of running their
// own.
//
//   goro::singleflight::group<std::string, std::shared_ptr<const Page>> pages;
//   auto [page, shared] = pages.do_call(url, [&] { return fetch(url); });
//
// do_call(key, fn) — Go's Do (`do` is a C++ keyword): if no call for key is
// in flight, runs fn on the calling goroutine (or thread) and returns
// {its value, shared}; otherwise parks (a goroutine frees its worker, a
// plain thread blocks) until the call in flight finishes and returns its
// value. `shared` is true when the value went to more than one caller
// (Go's `shared`, for the caller that ran fn too). If fn throws, every
// caller of that call rethrows the same exception (the same
// std::exception_ptr). Once the call has finished, the key is free: the next
// do_call runs fn again (nothing is cached).
//
// forget(key) — Go's Forget: the call in flight for key, if any, is no
// longer joined; the next do_call for key runs fn anew. Callers already
// waiting still get the old call's result.
//
// - V is copied to every caller: for a large value use a
//   std::shared_ptr<const T>. fn's result must convert to V.
// - fn calling do_call for its own key (on the same goroutine or thread)
//   would wait for itself (Go deadlocks): it throws goro::misuse_error
//   naming goro::singleflight::group::do_call instead.
// - If the caller running fn is unwound at shutdown (or ends with
//   goro::exit() inside fn), its call has no result; one of the callers
//   waiting for it runs its own fn instead. (Go's waiters call Goexit.)
// - Not provided: Go's DoChan — `goro::go` a do_call that sends its result
//   on a channel.
// - A group is neither copyable nor movable; it may be destroyed once no
//   do_call on it is in progress.
//
// Memory: fn's effects happen-before every do_call of that call returns.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "goro/detail/park.hpp"
#include "goro/detail/require_callable.hpp"
#include "goro/errors.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"

namespace goro::singleflight {

// What do_call returns: the call's value, and whether it went to more than
// one caller.
template <class V>
struct result {
    V value;              // the call's value
    bool shared = false;  // true when it went to more than one caller
};

// Duplicate suppression by key (Go's singleflight.Group); the file's comment
// says how do_call and forget behave.
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class group {
    static_assert(!std::is_void_v<V> && !std::is_reference_v<V>,
                  "goro::singleflight::group<K, V>: V is the value type every caller gets a "
                  "copy of (not void, not a reference)");

  public:
    group() = default;
    group(const group&) = delete;
    group& operator=(const group&) = delete;

    // Go's Do: runs fn for key, or waits for the call in flight for key and
    // shares its value (or rethrows its exception).
    template <class F>
    result<V> do_call(const K& key, F&& fn) {
        static_assert(std::is_invocable_v<F&>,
                      "goro::singleflight::group::do_call: fn is called with no arguments");
        static_assert(std::is_convertible_v<std::invoke_result_t<F&>, V>,
                      "goro::singleflight::group::do_call: fn's result must convert to V");
        detail::require_callable(fn, "goro::singleflight::group::do_call");
        std::shared_ptr<call> c = join(key);
        c->done.call([&] { run(*c, key, fn); });
        if (c->error) std::rethrow_exception(c->error);
        return {*c->value, c->shared};
    }

    // Go's Forget: the next do_call for key runs fn anew.
    void forget(const K& key) {
        std::lock_guard lk(mu_);
        calls_.erase(key);
    }

  private:
    // One call in flight for a key. Invariants: dups changes only under the
    // group's mu_, and only while the call is in calls_; value, error and
    // shared (and lost) are written by the caller that runs fn, inside done.call,
    // and read after it; runner is that caller's parker while fn runs.
    struct call {
        goro::once done;
        std::optional<V> value;
        std::exception_ptr error;
        bool shared = false;
        int dups = 0;
        // Callers whose run ended with no result (unwound, goro::exit in
        // fn): they got no value. Written by runners only, inside done.call.
        int lost = 0;
        std::atomic<detail::parker*> runner{nullptr};
    };

    // The call in flight for key (joined: dups counted), or a new one.
    std::shared_ptr<call> join(const K& key) {
        std::lock_guard lk(mu_);
        auto [it, fresh] = calls_.try_emplace(key);
        if (fresh) {
            try {
                it->second = std::make_shared<call>();
            } catch (...) {
                calls_.erase(it);
                throw;
            }
            return it->second;
        }
        if (it->second->runner.load(std::memory_order_relaxed) == detail::current_parker())
            throw misuse_error(
                "goro::singleflight::group::do_call: fn called do_call for its own key (it "
                "would wait for itself)");
        ++it->second->dups;
        return it->second;
    }

    template <class F>
    void run(call& c, const K& key, F& fn) {
        c.runner.store(detail::current_parker(), std::memory_order_relaxed);
        struct clear_runner {
            call& c;
            ~clear_runner() { c.runner.store(nullptr, std::memory_order_relaxed); }
        } guard{c};
        try {
            c.value.emplace(fn());
        } catch (const detail::goroutine_unwind&) {
            ++c.lost;
            throw;  // no result: a waiting caller runs its fn instead
        } catch (...) {
            c.error = std::current_exception();
        }
        // Finished: later callers start a new call (unless forgotten and
        // replaced already). Before the waiters are woken, as in Go.
        std::lock_guard lk(mu_);
        auto it = calls_.find(key);
        if (it != calls_.end() && it->second.get() == &c) calls_.erase(it);
        // Callers given the value: the first and every joiner, but those
        // whose own run had no result.
        c.shared = c.dups - c.lost > 0;
    }

    goro::mutex mu_;
    std::unordered_map<K, std::shared_ptr<call>, Hash, KeyEqual> calls_;  // guarded by mu_
};

}  // namespace goro::singleflight
