// net/net.cpp — goro::net's public calls (goro/net.hpp): listen, dial,
// accept and the conn operations, each one an op_scope on its socket_state
// (the close protocol is in socket.hpp) around the retry loop
// socket_state::io. Sockets are made non-blocking and close-on-exec at
// creation (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), so no other thread's
// fork+exec inherits them.
//
// Invariants: a call uses a socket's descriptor or poll_desc only inside an
// op_scope (close() is the protocol's other side; the addresses are fixed
// before the state is shared); listen, dial and accept build their state
// under a new_socket guard that closes it if they throw. No locks of its own
// (socket.hpp: deadline_mu -> pd.mu -> timer heap).
#include "goro/net.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "net/socket.hpp"

namespace goro::net {

namespace detail {
struct access {
    static conn make_conn(socket_state* s) noexcept { return conn(s); }
    static listener make_listener(socket_state* s) noexcept { return listener(s); }
};
}  // namespace detail

using detail::io_dir;
using detail::network;
using detail::op_scope;
using detail::sock_address;
using detail::socket_state;
using detail::wait_scope;

namespace {

// One system call moves at most this much (Go's maxRW): larger requests
// return short, which read/write allow.
constexpr std::size_t max_rw = std::size_t{1} << 30;

bool is_tcp(network n) {
    return n != network::unix_stream;
}

void set_int_option(int fd, int level, int name, int value, const char* call) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
        detail::throw_errno(detail::last_errno(), call);
}

void fill_local(socket_state* s, const char* call) {
    s->local.len = sizeof s->local.storage;
    if (::getsockname(s->fd, s->local.get(), &s->local.len) != 0)
        detail::throw_errno(detail::last_errno(), call);
}

// A new socket's state, closed and freed unless released to a conn or
// listener.
struct new_socket {
    socket_state* s = nullptr;
    ~new_socket() {
        if (s) {
            s->close();
            delete s;
        }
    }
    socket_state* release() noexcept { return std::exchange(s, nullptr); }
};

socket_state* make_socket(int family, network net, const char* call) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) detail::throw_errno(detail::last_errno(), call);
    return socket_state::open(fd, net);
}

// Waits for a non-blocking connect to finish (Go's netFD.connect): woken
// for writing, SO_ERROR says how it went; 0 with no peer yet was a stale
// edge (a fresh socket is writable before it connects), so wait again.
void finish_connect(socket_state* s, wait_scope& w, const char* call) {
    for (;;) {
        w.wait(s->pd, io_dir::write, call);
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            detail::throw_errno(detail::last_errno(), call);
        switch (err) {
            case EINPROGRESS:
            case EALREADY:
            case EINTR:
                continue;
            case 0:
            case EISCONN: {
                sock_address peer;
                peer.len = sizeof peer.storage;
                if (::getpeername(s->fd, peer.get(), &peer.len) == 0) return;
                if (detail::last_errno() != ENOTCONN)
                    detail::throw_errno(detail::last_errno(), call);
                continue;
            }
            default:
                detail::throw_errno(err, call);
        }
    }
}

conn dial_with(std::string_view network_name, std::string_view address, wait_scope& w,
               const char* call);

}  // namespace

// ---- conn ---------------------------------------------------------------

conn::conn(conn&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}

conn& conn::operator=(conn&& o) noexcept {
    if (this != &o) {
        close();
        delete s_;
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}

conn::~conn() {
    close();
    delete s_;
}

void conn::close() noexcept {
    if (s_) s_->close();
}

namespace {

std::size_t read_some(socket_state* s, void* buf, std::size_t n, wait_scope& w, const char* call) {
    if (n == 0) return 0;
    n = std::min(n, max_rw);
    return s->io(io_dir::read, w, call, [&] { return ::read(s->fd, buf, n); });
}

std::size_t write_some(socket_state* s, const void* buf, std::size_t n, wait_scope& w,
                       const char* call) {
    if (n == 0) return 0;
    n = std::min(n, max_rw);
    // MSG_NOSIGNAL: a vanished peer is EPIPE here, not a SIGPIPE that kills
    // the process.
    return s->io(io_dir::write, w, call, [&] { return ::send(s->fd, buf, n, MSG_NOSIGNAL); });
}

void read_full_with(socket_state* s, void* buf, std::size_t n, wait_scope& w, const char* call) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
        const std::size_t got = read_some(s, p, n, w, call);
        if (got == 0) throw std::system_error(make_error_code(errc::unexpected_eof), call);
        p += got;
        n -= got;
    }
}

void write_all_with(socket_state* s, const void* buf, std::size_t n, wait_scope& w,
                    const char* call) {
    const auto* p = static_cast<const char*>(buf);
    while (n > 0) {
        const std::size_t put = write_some(s, p, n, w, call);
        p += put;
        n -= put;
    }
}

}  // namespace

std::size_t conn::read(void* buf, std::size_t n) {
    constexpr const char* call = "goro::net::conn::read";
    op_scope op(s_, call);
    wait_scope w;
    return read_some(s_, buf, n, w, call);
}

std::size_t conn::read(void* buf, std::size_t n, const context& ctx) {
    constexpr const char* call = "goro::net::conn::read";
    op_scope op(s_, call);
    wait_scope w(ctx, call);
    return read_some(s_, buf, n, w, call);
}

void conn::read_full(void* buf, std::size_t n) {
    constexpr const char* call = "goro::net::conn::read_full";
    op_scope op(s_, call);
    wait_scope w;
    read_full_with(s_, buf, n, w, call);
}

void conn::read_full(void* buf, std::size_t n, const context& ctx) {
    constexpr const char* call = "goro::net::conn::read_full";
    op_scope op(s_, call);
    wait_scope w(ctx, call);
    read_full_with(s_, buf, n, w, call);
}

std::size_t conn::write(const void* buf, std::size_t n) {
    constexpr const char* call = "goro::net::conn::write";
    op_scope op(s_, call);
    wait_scope w;
    return write_some(s_, buf, n, w, call);
}

void conn::write_all(const void* buf, std::size_t n) {
    constexpr const char* call = "goro::net::conn::write_all";
    op_scope op(s_, call);
    wait_scope w;
    write_all_with(s_, buf, n, w, call);
}

void conn::write_all(const void* buf, std::size_t n, const context& ctx) {
    constexpr const char* call = "goro::net::conn::write_all";
    op_scope op(s_, call);
    wait_scope w(ctx, call);
    write_all_with(s_, buf, n, w, call);
}

void conn::set_deadline(clock::time_point t) {
    op_scope op(s_, "goro::net::conn::set_deadline");
    s_->set_deadline(io_dir::read, t);
    s_->set_deadline(io_dir::write, t);
}

void conn::set_read_deadline(clock::time_point t) {
    op_scope op(s_, "goro::net::conn::set_read_deadline");
    s_->set_deadline(io_dir::read, t);
}

void conn::set_write_deadline(clock::time_point t) {
    op_scope op(s_, "goro::net::conn::set_write_deadline");
    s_->set_deadline(io_dir::write, t);
}

void conn::shutdown_write() {
    constexpr const char* call = "goro::net::conn::shutdown_write";
    op_scope op(s_, call);
    if (::shutdown(s_->fd, SHUT_WR) != 0) detail::throw_errno(detail::last_errno(), call);
}

void conn::shutdown_read() {
    constexpr const char* call = "goro::net::conn::shutdown_read";
    op_scope op(s_, call);
    if (::shutdown(s_->fd, SHUT_RD) != 0) detail::throw_errno(detail::last_errno(), call);
}

std::string conn::local_address() const {
    if (!s_) detail::throw_empty("goro::net::conn::local_address");
    return detail::format_address(s_->local);
}

std::string conn::remote_address() const {
    if (!s_) detail::throw_empty("goro::net::conn::remote_address");
    return detail::format_address(s_->remote);
}

int conn::native_handle() const noexcept {
    return s_ && !s_->closed() ? s_->fd : -1;
}

void conn::set_no_delay(bool on) {
    constexpr const char* call = "goro::net::conn::set_no_delay";
    op_scope op(s_, call);
    if (is_tcp(s_->net)) set_int_option(s_->fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, call);
}

// ---- listener -----------------------------------------------------------

listener::listener(listener&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}

listener& listener::operator=(listener&& o) noexcept {
    if (this != &o) {
        close();
        delete s_;
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}

listener::~listener() {
    close();
    delete s_;
}

void listener::close() noexcept {
    if (s_) s_->close();
}

namespace {

// accept4's errors that only concern the connection being accepted (it was
// reset or its route went away before we took it): take the next one.
// accept(2) asks to treat the network errors so on Linux; Go retries
// ECONNABORTED.
bool retry_accept(int e) {
    switch (e) {
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EINTR:
            return true;
        default:
            return false;
    }
}

conn accept_with(socket_state* ls, wait_scope& w, const char* call) {
    sock_address peer;
    const std::size_t fd = ls->io(io_dir::read, w, call, [&]() -> ssize_t {
        for (;;) {
            peer.len = sizeof peer.storage;
            const int fd = ::accept4(ls->fd, peer.get(), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0 || !retry_accept(detail::last_errno())) return fd;
        }
    });
    new_socket ns{socket_state::open(static_cast<int>(fd), ls->net)};
    ns.s->remote = peer;
    fill_local(ns.s, call);
    if (is_tcp(ls->net)) set_int_option(ns.s->fd, IPPROTO_TCP, TCP_NODELAY, 1, call);
    return detail::access::make_conn(ns.release());
}

}  // namespace

conn listener::accept() {
    constexpr const char* call = "goro::net::listener::accept";
    op_scope op(s_, call);
    wait_scope w;
    return accept_with(s_, w, call);
}

conn listener::accept(const context& ctx) {
    constexpr const char* call = "goro::net::listener::accept";
    op_scope op(s_, call);
    wait_scope w(ctx, call);
    return accept_with(s_, w, call);
}

void listener::set_deadline(clock::time_point t) {
    op_scope op(s_, "goro::net::listener::set_deadline");
    s_->set_deadline(io_dir::read, t);
}

std::string listener::address() const {
    if (!s_) detail::throw_empty("goro::net::listener::address");
    return detail::format_address(s_->local);
}

int listener::native_handle() const noexcept {
    return s_ && !s_->closed() ? s_->fd : -1;
}

// ---- listen and dial ----------------------------------------------------

namespace {

socket_state* bind_and_listen(network net, const sock_address& addr, int backlog,
                              const char* call) {
    new_socket ns{make_socket(addr.family(), net, call)};
    const int fd = ns.s->fd;
    if (is_tcp(net)) set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, call);
    if (addr.family() == AF_INET6)
        set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, addr.dual_stack ? 0 : 1, call);
    if (::bind(fd, addr.get(), addr.len) != 0) detail::throw_errno(detail::last_errno(), call);
    if (::listen(fd, backlog) != 0) detail::throw_errno(detail::last_errno(), call);
    fill_local(ns.s, call);
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&addr.storage);
    if (!is_tcp(net) && sun->sun_path[0] != '\0') ns.s->unlink_path = sun->sun_path;
    return ns.release();
}

}  // namespace

listener listen(std::string_view network_name, std::string_view address, int backlog) {
    constexpr const char* call = "goro::net::listen";
    const network net = detail::parse_network(network_name, call);
    const sock_address addr = detail::parse_address(net, address, /*listening=*/true, call);
    try {
        return detail::access::make_listener(bind_and_listen(net, addr, backlog, call));
    } catch (const std::system_error& e) {
        // "tcp" with no host: one dual-stack IPv6 socket, or IPv4 alone on a
        // machine without IPv6.
        const int v = e.code().value();
        if (!addr.dual_stack || e.code().category() != std::generic_category() ||
            (v != EAFNOSUPPORT && v != EADDRNOTAVAIL && v != EPROTONOSUPPORT))
            throw;
        const sock_address v4 =
            detail::parse_address(network::tcp4, address, /*listening=*/true, call);
        return detail::access::make_listener(bind_and_listen(net, v4, backlog, call));
    }
}

conn dial(std::string_view network_name, std::string_view address, const context& ctx) {
    constexpr const char* call = "goro::net::dial";
    wait_scope w(ctx, call);
    return dial_with(network_name, address, w, call);
}

conn dial(std::string_view network_name, std::string_view address, clock::duration timeout) {
    constexpr const char* call = "goro::net::dial";
    wait_scope w(goro::detail::saturating_add(goro::now(), timeout));
    return dial_with(network_name, address, w, call);
}

namespace {

conn dial_with(std::string_view network_name, std::string_view address, wait_scope& w,
               const char* call) {
    const network net = detail::parse_network(network_name, call);
    const sock_address addr = detail::parse_address(net, address, /*listening=*/false, call);
    if (w.until() <= goro::now())
        throw std::system_error(make_error_code(errc::deadline_exceeded), call);
    new_socket ns{make_socket(addr.family(), net, call)};
    socket_state* s = ns.s;
    if (is_tcp(net)) set_int_option(s->fd, IPPROTO_TCP, TCP_NODELAY, 1, call);
    s->remote = addr;
    // Nobody else has s yet: no op_scope needed. A connect interrupted by a
    // signal goes on in the background, like EINPROGRESS. A unix socket
    // whose listener's queue is full says EAGAIN: thrown (as Go), not
    // waited for (it would never become writable).
    if (::connect(s->fd, addr.get(), addr.len) != 0) {
        const int e = detail::last_errno();
        if (e != EINPROGRESS && e != EINTR) detail::throw_errno(e, call);
        finish_connect(s, w, call);
    }
    fill_local(s, call);
    return detail::access::make_conn(ns.release());
}

}  // namespace

}  // namespace goro::net
