// context/context.cpp — the context tree.
//
// A node is one of: root (background/todo), cancel (with_cancel, deadline,
// stop_token), value, or without (without_cancel). Every node holds its
// parent strongly (value lookup walks up), and caches `canceller`: the
// nearest cancel node at or above it, or null when nothing above can cancel
// (a root or a without node in between). Nodes are freed by delete_node,
// a loop, not recursively: a chain of any length can be dropped on a
// goroutine's stack.
//
// A cancel node registers with the cancel node above it (if any) in that
// node's `children` map, weakly: a child nobody references any more is
// destroyed, and its destructor removes the entry, so children of a
// long-lived parent do not pile up. Cancelling takes the children map, the
// after-funcs and the heirs out under the node's lock, then — without the
// lock — closes done, stops the deadline timer, requests stop on the
// stop_source, starts the after-funcs, fires the heirs, and cancels the
// children (a work list, not recursion, so deep chains cannot overflow a
// stack), and finally unregisters from above.
//
// Heirs. A node can die uncancelled while something outside still watches
// it: a copy of its done channel, a stop_token of its stop_source, an
// after-func whose stop function was dropped. Go keeps such a child alive
// in its parent until the parent is cancelled; here the dying node leaves
// an `heir` (the watched parts only) with the cancel node above, which
// fires it when it is cancelled itself (or passes it on when it dies
// uncancelled in turn), and with its own deadline timer (through its
// `deadline_link`), so a watcher still sees the cancellation Go would
// deliver. An heir fires at most once. Unwatched parts are simply dropped.
//
// Invariants (under mu): state goes live -> cancelled once; a cancelled node
// has empty children, afters and heirs (later ones are fired on arrival).
// Lock order: a child's lock is never held while taking its parent's; a
// deadline_link's lock is a leaf; no lock is held while cancelling another
// node, closing a channel or spawning.
#include "goro/context.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <list>
#include <unordered_map>
#include <vector>

#include "goro/detail/spin_mutex.hpp"
#include "goro/time.hpp"
#include "sanitizers/hooks.hpp"
#include "time/outlives_run.hpp"

namespace goro::detail {

// What a node that died uncancelled leaves to be fired on its behalf.
// Immutable after creation except `fired` (and the parts fire() consumes).
struct heir {
    std::atomic<bool> fired{false};
    chan_ref done;                                 // someone else holds a copy
    std::optional<std::stop_source> stop;          // tokens were handed out
    std::vector<std::function<void()>> afters;     // still registered
    std::vector<std::shared_ptr<heir>> inherited;  // left by dead descendants
    bool sticky = false;                           // has more than a done channel to deliver

    heir() = default;
    heir(const heir&) = delete;
    heir& operator=(const heir&) = delete;
    // The inherited heirs chain as deep as the contexts that left them did:
    // released in a loop, not a destructor frame per heir. An heir held
    // only here (use_count 1: nothing holds heirs weakly, so nothing can
    // take a new reference) gives up its own inherited ones first.
    ~heir() {
        std::vector<std::shared_ptr<heir>> work = std::move(inherited);
        while (!work.empty()) {
            std::shared_ptr<heir> h = std::move(work.back());
            work.pop_back();
            if (h.use_count() == 1) {
                for (auto& i : h->inherited) work.push_back(std::move(i));
                h->inherited.clear();
            }
        }
    }
};

// The deadline timer's way to its node: the node while it lives, its heir
// after it died uncancelled.
struct deadline_link {
    cancel_cause cause;  // the deadline's cause (set before the timer starts, then read-only)
    spin_mutex mu{lock_rank::deadline_link};
    std::weak_ptr<context_node> node;
    std::shared_ptr<heir> inheritor;  // set by a node dying uncancelled
    bool pulled = false;              // the timer fired while the node was dying
};

struct context_node : std::enable_shared_from_this<context_node> {
    // Destroyed last: the destructor's bookkeeping, members included, is
    // ignored by TSan (sanitizers/hooks.hpp).
    san::ignore_until_destroyed teardown;
    enum class kind : unsigned char { root, cancel, value, without };
    kind k = kind::root;
    std::shared_ptr<context_node> parent;
    context_node* canceller = nullptr;  // nearest cancel node at or above, or null
    std::optional<clock::time_point> deadline;
    // value nodes
    const void* key = nullptr;
    std::shared_ptr<const void> val;
    // cancel nodes
    spin_mutex mu{lock_rank::context};
    std::atomic<int> state{0};  // 0 live, else the errc value
    cancel_cause why;           // guarded by mu (set once, before state)
    chan_ref done;              // guarded by mu; made by the first done() (Go: lazily)
    std::unordered_map<context_node*, std::weak_ptr<context_node>> children;  // guarded by mu
    std::list<std::pair<std::uint64_t, std::function<void()>>> afters;        // guarded by mu
    std::uint64_t next_after = 0;
    std::vector<std::shared_ptr<heir>> heirs;   // guarded by mu
    std::size_t prune_heirs_at = 16;            // guarded by mu
    std::optional<std::stop_source> stop_src;   // guarded by mu, made on demand
    std::optional<goro::timer> deadline_timer;  // guarded by mu
    std::shared_ptr<deadline_link> link;        // set once by with_deadline; only ~ reads it
    std::optional<std::stop_callback<std::function<void()>>> stop_cb;
    bool registered = false;  // in canceller-above's children (guarded by its mu)

    // What dying means for the tree (run by delete_node, below, just before
    // the node is freed): needs `parent`, which is still set.
    void retire();
};

namespace {

// Requests stop on src, first announcing it to TSan: a program polls its
// tokens with stop_requested(), an acquire load of the stop state's value
// word inlined into the program's code, but this request_stop() is goro's
// (uninstrumented), so TSan would not see the store it pairs with, and a
// poller that read what the canceller wrote before the stop was reported
// as racing with it. The release on that word carries the canceller's
// clock. Its address is libstdc++'s layout (stop_source holds a pointer
// to a _Stop_state_t, whose second 32-bit atomic is the value word);
// without libstdc++ there is no announcement.
void request_stop(std::stop_source& src) noexcept {
#if defined(__GLIBCXX__)
    static_assert(sizeof(std::stop_source) == sizeof(void*),
                  "libstdc++'s stop_source is one pointer to its shared state");
    if (san::tsan()) [[unlikely]] {
        char* state = nullptr;
        std::memcpy(&state, &src, sizeof state);
        if (state) san::tsan_release(state + sizeof(std::atomic<std::uint32_t>));
    }
#endif
    src.request_stop();
}

// Set by delete_node's loop around the release of one parent, on this
// thread; no user code runs and nothing parks while it is set. Read and
// written only through these out-of-line functions: the loop's goroutine
// may have moved to another thread in the user code between two
// releases, and a compiler may keep a thread-local's address in a
// register across calls (parking/tls.cpp).
thread_local context_node** handoff = nullptr;

[[gnu::noinline]] void set_handoff(context_node** slot) noexcept {
    asm volatile("" ::: "memory");
    handoff = slot;
}

[[gnu::noinline]] context_node** take_handoff() noexcept {
    asm volatile("" ::: "memory");
    context_node** slot = handoff;
    handoff = nullptr;
    return slot;
}

// The deleter of every node. Each node holds its parent strongly, so
// freeing a leaf may free a whole chain (`ctx = with_value(ctx, ...)` in a
// loop builds one of any length): freed recursively, each node's release
// would run inside its child's destructor, a frame per node, and a long
// chain overflows a goroutine's stack. So the chain is freed by a loop:
// retire the node, take its parent out, free it, then release the parent
// with `handoff` set; if that was the parent's last reference, this
// function is called again at once, from inside the release, and only
// hands the parent back to the loop.
void delete_node(context_node* n) noexcept {
    if (context_node** slot = take_handoff()) {
        *slot = n;
        return;
    }
    while (n) {
        n->retire();
        std::shared_ptr<context_node> up = std::move(n->parent);
        delete n;
        context_node* next = nullptr;
        set_handoff(&next);
        up.reset();
        set_handoff(nullptr);
        n = next;
    }
}

std::shared_ptr<context_node> make_node() {
    return std::shared_ptr<context_node>(new context_node, &delete_node);
}

context_node* above(const context_node* n) {
    return n->parent ? n->parent->canceller : nullptr;
}

// Delivers heirs (and everything they inherited) once each.
void fire_heirs(std::vector<std::shared_ptr<heir>> work) {
    while (!work.empty()) {
        std::shared_ptr<heir> h = std::move(work.back());
        work.pop_back();
        if (h->fired.exchange(true, std::memory_order_acq_rel)) continue;
        if (h->done) chan_close(h->done.get());
        if (h->stop) request_stop(*h->stop);
        for (auto& fn : h->afters) spawn_quiet(std::move(fn), source_location::current());
        for (auto& i : h->inherited) work.push_back(i);
    }
}

void cancel_node(const std::shared_ptr<context_node>& start, errc e, cancel_cause why) {
    san::ignore_scope bookkeeping;  // goro's bookkeeping (TSan: sanitizers/hooks.hpp)
    std::vector<std::shared_ptr<context_node>> work{start};
    while (!work.empty()) {
        std::shared_ptr<context_node> n = std::move(work.back());
        work.pop_back();
        std::unordered_map<context_node*, std::weak_ptr<context_node>> children;
        std::list<std::pair<std::uint64_t, std::function<void()>>> afters;
        std::optional<std::stop_source> stop_src;
        std::optional<goro::timer> timer;
        std::vector<std::shared_ptr<heir>> heirs;
        chan_core* done = nullptr;
        {
            lock_scope lk(n->mu);
            if (n->state.load(std::memory_order_relaxed) != 0) continue;
            // From here on done() hands out the shared closed channel if the
            // node has none yet, so nothing is made after this read.
            done = n->done.get();
            n->why = why;
            // The cancellation, to err() and cause() (TSan: sanitizers/hooks.hpp).
            san::tsan_release(n.get());
            n->state.store(static_cast<int>(e), std::memory_order_release);
            children.swap(n->children);
            afters.swap(n->afters);
            heirs.swap(n->heirs);
            stop_src = n->stop_src;
            timer = n->deadline_timer;
            for (auto& [ptr, weak] : children)
                if (auto c = weak.lock()) {
                    c->registered = false;  // the map it was in is gone (guarded by n->mu)
                    work.push_back(std::move(c));
                }
        }
        if (done) chan_close(done);
        if (stop_src) request_stop(*stop_src);
        if (timer) timer->stop();
        // Each after-func's goroutine acquires n, which its registration
        // released (TSan: a deadline's cancel runs on a worker's fiber, which
        // does not acquire; sanitizers/hooks.hpp).
        for (auto& [id, fn] : afters)
            spawn_quiet(
                [keep = san::release_ignored<std::shared_ptr<context_node>>(n), f = std::move(fn)] {
                    san::tsan_acquire(keep.p.get());
                    f();
                },
                source_location::current());
        fire_heirs(std::move(heirs));
        // Detach from the canceller above (the start node only: the others'
        // entries went with their parent's map).
        if (n == start) {
            if (context_node* a = above(n.get())) {
                lock_scope lk(a->mu);
                if (n->registered) a->children.erase(n.get());
                n->registered = false;
            }
        }
    }
}

std::shared_ptr<context_node> new_cancel_node(const context& parent) {
    san::ignore_scope bookkeeping;  // goro's bookkeeping (TSan: sanitizers/hooks.hpp)
    auto n = make_node();
    n->k = context_node::kind::cancel;
    n->parent = parent.node();
    n->canceller = n.get();
    if (parent.node()) n->deadline = parent.node()->deadline;
    // Register with the canceller above, or inherit its cancellation.
    if (context_node* a = above(n.get())) {
        bool cancelled = false;
        errc e{};
        cancel_cause why;
        {
            lock_scope lk(a->mu);
            if (int s = a->state.load(std::memory_order_relaxed)) {
                // The cancellation above, to this node's observers (TSan:
                // a->mu is goro's, unseen; the cancel below releases n).
                san::tsan_acquire(a);
                cancelled = true;
                e = static_cast<errc>(s);
                why = a->why;
            } else {
                a->children.emplace(n.get(), n);
                n->registered = true;
            }
        }
        if (cancelled) cancel_node(n, e, why);
    }
    return n;
}

cancel_cause cause_of(errc e) {
    std::error_code ec = make_error_code(e);
    return cancel_cause(ec, std::make_exception_ptr(std::system_error(ec)));
}

// A cause given as an exception: its code is that of a std::system_error,
// else `fallback` (the context's err() once the cause applies).
cancel_cause cause_from(std::exception_ptr ex, errc fallback) {
    std::error_code ec = make_error_code(fallback);
    try {
        std::rethrow_exception(ex);
    } catch (const std::system_error& e) {
        ec = e.code();
    } catch (...) {
    }
    return cancel_cause(ec, std::move(ex));
}

cancel_cause cause_from(std::error_code ec) {
    return cancel_cause(ec, std::make_exception_ptr(std::system_error(ec)));
}

}  // namespace

namespace {

// The timer of a deadline node fired: cancel the node, or fire its heir if
// it died uncancelled (or tell the dying node to fire it).
void pull(deadline_link& l) {
    std::shared_ptr<context_node> n;
    std::shared_ptr<heir> h;
    {
        lock_scope lk(l.mu);
        n = l.node.lock();
        if (!n) {
            h = l.inheritor;
            if (!h) l.pulled = true;
        }
    }
    if (n)
        cancel_node(n, errc::deadline_exceeded, l.cause);
    else if (h)
        fire_heirs({std::move(h)});
}

// Drops heirs that fired or that nobody watches any more, when the list has
// doubled since the last sweep (amortised O(1) per heir). Requires a->mu.
void add_heir(context_node& a, std::shared_ptr<heir> h) {
    if (a.heirs.size() >= a.prune_heirs_at) {
        std::erase_if(a.heirs, [](const std::shared_ptr<heir>& x) {
            return x->fired.load(std::memory_order_acquire) ||
                   (!x->sticky && x->done.use_count() == 1);
        });
        a.prune_heirs_at = std::max<std::size_t>(16, 2 * a.heirs.size());
    }
    a.heirs.push_back(std::move(h));
}

}  // namespace

// Runs when the last handle is gone (delete_node), so nothing else touches
// this node's own fields any more (its canceller above may still hold a
// dead weak entry).
void context_node::retire() {
    san::tsan_ignore_begin();  // ended by `teardown`, the last member destroyed
    if (k != kind::cancel) return;
    stop_cb.reset();  // a concurrent stop request finds the node gone
    std::shared_ptr<heir> h;
    if (state.load(std::memory_order_acquire) == 0) {
        bool watched_done = done && done.use_count() > 1;
        bool sticky = stop_src || !afters.empty() || !heirs.empty();
        if (watched_done || sticky) {
            h = std::make_shared<heir>();
            if (watched_done) h->done = done;
            h->stop = std::move(stop_src);
            for (auto& [id, fn] : afters) h->afters.push_back(std::move(fn));
            h->inherited = std::move(heirs);
            h->sticky = sticky;
        }
    }
    bool fire_now = false;
    if (registered) {
        if (context_node* a = above(this)) {
            lock_scope lk(a->mu);
            a->children.erase(this);
            if (h) {
                if (a->state.load(std::memory_order_relaxed) == 0)
                    add_heir(*a, h);
                else
                    fire_now = true;  // it was cancelled as we died
            }
        }
    }
    bool timer_keeps_heir = false;
    if (link) {
        lock_scope lk(link->mu);
        if (link->pulled)
            fire_now = fire_now || h;
        else if (h) {
            link->inheritor = h;
            timer_keeps_heir = true;
        }
    }
    if (deadline_timer && !timer_keeps_heir) deadline_timer->stop();
    if (fire_now) fire_heirs({std::move(h)});
}

context with_value_erased(const context& parent, const void* key, std::shared_ptr<const void> v) {
    san::ignore_scope bookkeeping;  // goro's bookkeeping (TSan: sanitizers/hooks.hpp)
    auto n = make_node();
    n->k = context_node::kind::value;
    n->parent = parent.node();
    n->canceller = parent.node() ? parent.node()->canceller : nullptr;
    n->deadline = parent.node() ? parent.node()->deadline : std::nullopt;
    n->key = key;
    n->val = std::move(v);
    return context(std::move(n));
}

// For tests (declared again where they use it).
std::size_t context_after_func_count(const context& ctx);

}  // namespace goro::detail

namespace goro {

using detail::context_node;

namespace {

// What done() returns for a context cancelled before anyone asked for its
// channel (Go's closedchan): one closed channel for all of them.
// Never destroyed: goroutines may still ask for it while the process exits
// (a static destroyed before the runtime's exit hook unwinds them).
const detail::chan_ref& closed_done() {
    static const detail::chan_ref& c = *new detail::chan_ref([] {
        auto ch = detail::make_chan_core(&detail::elem_ops_for<unit>, 0);
        detail::chan_close(ch.get());
        return ch;
    }());
    return c;
}

}  // namespace

recv_chan<unit> context::done() const {
    if (!n_ || !n_->canceller) return {};
    // The canceller is alive: n_ holds its ancestors.
    context_node* c = n_->canceller;
    detail::lock_scope lk(c->mu);
    if (!c->done) {
        if (c->state.load(std::memory_order_relaxed) != 0) {
            // The cancellation, to this caller (TSan: sanitizers/hooks.hpp).
            // The shared closed channel carries nothing of it (it was
            // closed once, long ago), and c->mu is goro's, unseen: without
            // this a goroutine whose first done() comes after the cancel
            // would not be ordered after what the canceller did before it.
            detail::san::tsan_acquire(c);
            return detail::chan_access::make<recv_chan<unit>>(closed_done());
        }
        c->done = detail::make_chan_core(&detail::elem_ops_for<unit>, 0);
    }
    return detail::chan_access::make<recv_chan<unit>>(c->done);
}

std::error_code context::err() const {
    if (!n_ || !n_->canceller) return {};
    int s = n_->canceller->state.load(std::memory_order_acquire);
    if (!s) return {};
    detail::san::tsan_acquire(n_->canceller);
    return make_error_code(static_cast<errc>(s));
}

std::optional<clock::time_point> context::deadline() const {
    return n_ ? n_->deadline : std::nullopt;
}

const void* context::find_value(const void* key) const {
    for (const context_node* n = n_.get(); n; n = n->parent.get())
        if (n->k == context_node::kind::value && n->key == key) return n->val.get();
    return nullptr;
}

std::stop_token context::stop_token() const {
    if (!n_ || !n_->canceller) return {};
    context_node* c = n_->canceller;
    detail::lock_scope lk(c->mu);
    if (!c->stop_src) {
        c->stop_src.emplace();
        if (c->state.load(std::memory_order_relaxed) != 0) {
            // Cancelled before: what the cancel released (cancel_node), to
            // this caller and, through the stop, to every poller (TSan).
            detail::san::tsan_acquire(c);
            detail::request_stop(*c->stop_src);
        }
    }
    return c->stop_src->get_token();
}

void cancel_func::operator()() const {
    if (n_) detail::cancel_node(n_, errc::canceled, detail::cause_of(errc::canceled));
}

void cancel_func::operator()(std::exception_ptr cause) const {
    if (!n_) return;
    if (!cause) return (*this)();
    detail::cancel_node(n_, errc::canceled, detail::cause_from(std::move(cause), errc::canceled));
}

void cancel_func::operator()(std::error_code cause) const {
    if (!n_) return;
    if (!cause) return (*this)();
    detail::cancel_node(n_, errc::canceled, detail::cause_from(cause));
}

void cancel_func::operator()(const cancel_cause& cause) const {
    if (!n_) return;
    if (!cause) return (*this)();
    detail::cancel_node(n_, errc::canceled, cause);
}

context background() {
    return context();
}

context todo() {
    auto n = detail::make_node();  // a distinct root, like Go's todoCtx
    return context(std::move(n));
}

std::pair<context, cancel_func> with_cancel(const context& parent) {
    auto n = detail::new_cancel_node(parent);
    return {context(n), cancel_func(n)};
}

std::pair<context, cancel_func> with_cancel_cause(const context& parent) {
    return with_cancel(parent);
}

namespace {

// with_deadline, with `why` as the cause when the deadline passes.
std::pair<context, cancel_func> deadline_node(const context& parent, clock::time_point d,
                                              cancel_cause why) {
    detail::san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    if (auto pd = parent.deadline(); pd && *pd <= d)
        return with_cancel(parent);  // parent's is sooner
    auto n = detail::new_cancel_node(parent);
    n->deadline = d;
    auto now = goro::now();
    if (d <= now) {
        detail::cancel_node(n, errc::deadline_exceeded, std::move(why));
    } else {
        auto link = std::make_shared<detail::deadline_link>();
        link->cause = std::move(why);
        link->node = n;
        n->link = link;
        // Past the end of the run() it was made in, while somebody still
        // holds the context (or a watcher its heir): its deadline still
        // cancels it then.
        std::weak_ptr<detail::deadline_link> weak = link;
        goro::timer t(detail::timer_tag{}, detail::make_timer_outliving_run_if(
                                               d - now, {}, [link] { detail::pull(*link); },
                                               goro::source_location::current(),
                                               [weak] {
                                                   auto l = weak.lock();
                                                   if (!l) return false;
                                                   detail::lock_scope lk(l->mu);
                                                   return !l->node.expired() ||
                                                          l->inheritor != nullptr;
                                               }));
        bool live;
        {
            detail::lock_scope lk(n->mu);
            live = n->state.load(std::memory_order_relaxed) == 0;
            if (live) n->deadline_timer = t;
        }
        if (!live) t.stop();  // cancelled by its parent meanwhile
    }
    return {context(n), cancel_func(n)};
}

}  // namespace

std::pair<context, cancel_func> with_deadline(const context& parent, clock::time_point d) {
    return deadline_node(parent, d, detail::cause_of(errc::deadline_exceeded));
}

std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    std::exception_ptr cause) {
    return deadline_node(parent, d,
                         cause ? detail::cause_from(std::move(cause), errc::deadline_exceeded)
                               : detail::cause_of(errc::deadline_exceeded));
}

std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    std::error_code cause) {
    return deadline_node(
        parent, d, cause ? detail::cause_from(cause) : detail::cause_of(errc::deadline_exceeded));
}

std::pair<context, cancel_func> with_deadline_cause(const context& parent, clock::time_point d,
                                                    const cancel_cause& cause) {
    return deadline_node(parent, d, cause ? cause : detail::cause_of(errc::deadline_exceeded));
}

context without_cancel(const context& parent) {
    auto n = detail::make_node();
    n->k = context_node::kind::without;
    n->parent = parent.node();
    return context(std::move(n));
}

std::pair<context, cancel_func> with_stop_token(const context& parent, std::stop_token token) {
    auto n = detail::new_cancel_node(parent);
    std::weak_ptr<context_node> weak = n;
    n->stop_cb.emplace(std::move(token), std::function<void()>([weak] {
                           if (auto s = weak.lock())
                               detail::cancel_node(s, errc::canceled,
                                                   detail::cause_of(errc::canceled));
                       }));
    return {context(n), cancel_func(n)};
}

cancel_cause cause(const context& ctx) {
    const auto& n = ctx.node();
    if (!n || !n->canceller) return {};
    context_node* c = n->canceller;
    if (c->state.load(std::memory_order_acquire) == 0) return {};
    detail::san::tsan_acquire(c);
    detail::lock_scope lk(c->mu);
    return c->why;
}

// For tests: how many after-funcs are registered on ctx's canceller.
std::size_t detail::context_after_func_count(const context& ctx) {
    detail::san::ignore_scope bookkeeping;
    const auto& n = ctx.node();
    if (!n || !n->canceller) return 0;
    detail::lock_scope lk(n->canceller->mu);
    return n->canceller->afters.size();
}

after_func_stop detail::context_after_func_erased(const context& ctx, std::function<void()> fn) {
    detail::san::ignore_scope bookkeeping;  // TSan: sanitizers/hooks.hpp
    const auto& n = ctx.node();
    if (!n || !n->canceller) {
        // Never runs. As Go's stop: true once (the call that stopped fn), then
        // false ("f was already stopped"), copies of the stop included.
        return after_func_stop([stopped = std::make_shared<std::atomic<bool>>(false)] {
            return !stopped->exchange(true, std::memory_order_acq_rel);
        });
    }
    std::shared_ptr<context_node> c(n, n->canceller);  // aliasing: keeps the chain alive
    std::uint64_t id;
    {
        detail::lock_scope lk(c->mu);
        if (c->state.load(std::memory_order_relaxed) == 0) {
            id = c->next_after++;
            c->afters.emplace_back(id, std::move(fn));
            detail::san::tsan_release(c.get());  // fn, to the cancel that starts it (TSan)
            // Its last release, and the erase, are goro's bookkeeping (TSan).
            return after_func_stop(
                [keep = detail::san::release_ignored<std::shared_ptr<context_node>>(c), id] {
                    detail::san::ignore_scope bookkeeping;
                    context_node* a = keep.p.get();
                    detail::lock_scope lk2(a->mu);
                    for (auto it = a->afters.begin(); it != a->afters.end(); ++it)
                        if (it->first == id) {
                            a->afters.erase(it);
                            return true;
                        }
                    return false;
                });
        }
    }
    // Already cancelled: the cancellation, to fn through the spawn (TSan:
    // c->mu is goro's, unseen).
    detail::san::tsan_acquire(c.get());
    detail::spawn_quiet(std::move(fn), source_location::current());
    return after_func_stop([] { return false; });
}

}  // namespace goro
