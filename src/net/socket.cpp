// net/socket.cpp — socket_state: registration, the close protocol and the
// waits of goro::net's sockets. The protocol and its invariants are at the
// top of socket.hpp.
#include "net/socket.hpp"

#include <unistd.h>

#include <cerrno>

#include <system_error>

#include "sanitizers/hooks.hpp"

namespace goro::net::detail {

// noinline and an opaque barrier: neither inlining nor an optimizer's
// pure/const inference may turn this back into a const call.
__attribute__((noinline)) int last_errno() noexcept {
    asm volatile("" ::: "memory");
    return errno;
}

void throw_errno(int e, const char* call) {
    throw std::system_error(e, std::generic_category(), call);
}

void throw_status(io_status st, const char* call) {
    switch (st) {
        case io_status::timeout:
            throw std::system_error(make_error_code(errc::deadline_exceeded), call);
        case io_status::closed:
            throw std::system_error(make_error_code(errc::closed), call);
        case io_status::canceled:
            throw std::system_error(make_error_code(errc::canceled), call);
        case io_status::ready:
            break;
    }
    throw std::logic_error(std::string(call) + ": no error to throw");
}

void throw_empty(const char* call) {
    throw misuse_error(std::string(call) +
                       ": not a socket (default-constructed or moved-from object)");
}

// ---- wait_scope ---------------------------------------------------------

wait_scope::wait_scope(const context& ctx, const char* call)
    : ctx_(&ctx), until_(ctx.deadline().value_or(clock::time_point::max())) {
    if (std::error_code e = ctx.err()) throw std::system_error(e, call);
}

wait_scope::~wait_scope() {
    // After stop() the after-func may still be running (it started before):
    // it only locks cancel_->pd->mu (poll_descs are never freed) and finds
    // no waiter; the shared io_cancel outlives it.
    stop_();
}

void wait_scope::wait(goro::detail::poll_desc* pd, io_dir d, const char* call) {
    if (ctx_ && !cancel_) {
        cancel_ = std::make_shared<goro::detail::io_cancel>();
        cancel_->pd = pd;
        stop_ = context_after_func(
            *ctx_, [c = cancel_] { goro::detail::interrupt_wait(*c, io_status::canceled); });
    }
    const io_status st = pd->wait(d, until_, cancel_.get());
    if (st == io_status::ready) return;
    // A context that is done explains a cancel or a timeout of its own
    // deadline better than the bare status does.
    if (ctx_ && st != io_status::closed)
        if (std::error_code e = ctx_->err()) throw std::system_error(e, call);
    throw_status(st, call);
}

// ---- socket_state -------------------------------------------------------

socket_state* socket_state::open(int fd, network net) {
    auto* s = new socket_state(fd, net);
    try {
        s->pd = goro::detail::poller::instance().open(fd, /*persistent=*/true);
    } catch (...) {
        ::close(fd);
        delete s;
        throw;
    }
    return s;
}

void socket_state::enter(const char* call) {
    std::uint64_t w = word_.load(std::memory_order_relaxed);
    do {
        if (w & closed_bit) throw std::system_error(make_error_code(errc::closed), call);
    } while (!word_.compare_exchange_weak(w, w + one_ref, std::memory_order_acquire,
                                          std::memory_order_relaxed));
}

void socket_state::leave() noexcept {
    // acq_rel: the destroyer must see every operation's use of the fd done
    // (and TSan too: sanitizers/hooks.hpp; destroy acquires).
    // Our last touch of the state unless we destroy.
    goro::detail::san::tsan_release(this);
    if (word_.fetch_sub(one_ref, std::memory_order_acq_rel) - one_ref == closed_bit) destroy();
}

void socket_state::close() noexcept {
    std::uint64_t w = word_.load(std::memory_order_relaxed);
    do {
        if (w & closed_bit) return;
    } while (!word_.compare_exchange_weak(w, (w | closed_bit) + one_ref, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
    pd->evict();
    leave();
}

void socket_state::destroy() noexcept {
    goro::detail::san::tsan_acquire(this);  // every operation's use of the fd (leave)
    goro::detail::poller::instance().close(pd);
    // As Go's UnixListener: the path goes before the socket, so a new
    // listener may bind it as soon as this one is closed.
    if (!unlink_path.empty()) ::unlink(unlink_path.c_str());
    ::close(fd);
}

void socket_state::set_deadline(io_dir d, clock::time_point t) {
    std::lock_guard<std::mutex> lk(deadline_mu_);
    pd->set_deadline(d, t);
}

}  // namespace goro::net::detail
