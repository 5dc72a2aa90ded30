// net/io.cpp — goro::wait_readable / wait_writable (goro/io.hpp) on the
// network poller: a plain descriptor gets the poll_desc of its number, armed
// one-shot per wait, so a number reused for another file needs nothing (see
// poller.hpp). A context's cancellation reaches the wait through an
// io_cancel shared with a context after-func, registered for the wait's
// duration only: it is stopped however the wait ends (unwind included).
#include "goro/io.hpp"

#include <memory>

#include "net/poller.hpp"

namespace goro {

namespace {

std::error_code to_error(detail::io_status st) {
    switch (st) {
        case detail::io_status::ready:
            return {};
        case detail::io_status::timeout:
            return make_error_code(errc::deadline_exceeded);
        case detail::io_status::closed:
            return make_error_code(errc::closed);
        case detail::io_status::canceled:
            return make_error_code(errc::canceled);
    }
    return {};
}

std::error_code wait_until(int fd, detail::io_dir d, clock::time_point deadline) {
    return to_error(detail::poller::instance().for_fd(fd)->wait(d, deadline));
}

std::error_code wait_ctx(int fd, detail::io_dir d, const context& ctx) {
    if (auto e = ctx.err()) return e;
    detail::poll_desc* pd = detail::poller::instance().for_fd(fd);
    auto cancel = std::make_shared<detail::io_cancel>();
    cancel->pd = pd;
    // Deregistered however the wait ends, shutdown's unwind included (else
    // ctx keeps the after-func, and a later cancel runs it on a dead wait).
    struct stop_on_exit {
        after_func_stop stop;
        ~stop_on_exit() { stop(); }
    } guard{context_after_func(
        ctx, [cancel] { detail::interrupt_wait(*cancel, detail::io_status::canceled); })};
    detail::io_status st =
        pd->wait(d, ctx.deadline().value_or(clock::time_point::max()), cancel.get());
    if (st == detail::io_status::canceled || st == detail::io_status::timeout)
        if (auto e = ctx.err()) return e;
    return to_error(st);
}

}  // namespace

std::error_code wait_readable(int fd, clock::time_point deadline) {
    return wait_until(fd, detail::io_dir::read, deadline);
}

std::error_code wait_writable(int fd, clock::time_point deadline) {
    return wait_until(fd, detail::io_dir::write, deadline);
}

std::error_code wait_readable(int fd, const context& ctx) {
    return wait_ctx(fd, detail::io_dir::read, ctx);
}

std::error_code wait_writable(int fd, const context& ctx) {
    return wait_ctx(fd, detail::io_dir::write, ctx);
}

}  // namespace goro
