// sync/errgroup.cpp — errgroup: a wait_group, the first failure under a
// mutex, an optional cancel, and an optional limit channel (a token per
// running task, as in Go). Lock order: state.mu is a leaf.
#include "goro/errgroup.hpp"

#include <mutex>

namespace goro {

chan<unit> errgroup::limit_chan() const {
    std::lock_guard lk(s_->mu);
    return s_->sem;
}

void errgroup::set_limit(std::int64_t n) {
    std::lock_guard lk(s_->mu);
    // A task holds a token (limited) or counts in wg (either way; an
    // unlimited group's tasks hold no token, and a new limit would not count
    // them).
    if (s_->wg.count() != 0 || (!s_->sem.is_nil() && s_->sem.size() != 0))
        throw misuse_error("goro::errgroup::set_limit: modify limit while tasks are active");
    s_->sem = n < 0 ? chan<unit>() : make_chan<unit>(static_cast<std::size_t>(n));
}

void errgroup::fail(state& s, failure f) {
    {
        std::lock_guard lk(s.mu);
        if (s.first) return;  // only the first failure counts
        s.first = f;
    }
    s.cancel(f.exception());
}

void errgroup::task_done(state& s, const chan<unit>& sem) {
    if (!sem.is_nil()) sem.try_recv();  // give back the token this task took
    s.wg.done();
}

std::string errgroup::failure::message() const {
    if (!ex_) return {};
    try {
        std::rethrow_exception(ex_);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

errgroup::failure errgroup::wait_error() {
    s_->wg.wait();
    s_->cancel();
    std::lock_guard lk(s_->mu);
    return s_->first;
}

void errgroup::wait() {
    if (failure f = wait_error()) f.rethrow();
}

}  // namespace goro
