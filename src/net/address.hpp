// net/address.hpp — goro::net's networks and addresses: parsing the strings
// users write ("tcp", "127.0.0.1:80", "[::1]:80", ":80", "@abstract") into
// socket addresses, and formatting socket addresses back.
//
// No DNS: a host is a numeric IPv4 or IPv6 address, "localhost", or empty
// (every interface when listening, the loopback when dialing, as Go). A
// malformed address is misuse (goro::misuse_error naming the call and the
// address); whether the address exists is the kernel's business (bind and
// connect report it with an errno).
// No state, no locks.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace goro::net::detail {

enum class network : unsigned char { tcp, tcp4, tcp6, unix_stream };

// "tcp", "tcp4", "tcp6", "unix"; anything else throws misuse_error
// "<call>: unknown network \"udp\"".
network parse_network(std::string_view name, const char* call);

struct sock_address {
    sockaddr_storage storage{};
    socklen_t len = 0;
    // Listening on "tcp" with no host or "::": one IPv6 socket that also
    // accepts IPv4 (IPV6_V6ONLY off), as Go. tcp6 sockets are IPv6-only.
    bool dual_stack = false;

    int family() const noexcept { return storage.ss_family; }
    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
};

// The socket address for `address` on `net`. `listening`: an empty host
// means every interface (else the loopback). Throws misuse_error naming
// `call` for a malformed address.
sock_address parse_address(network net, std::string_view address, bool listening, const char* call);

// "127.0.0.1:5000", "[::1]:5000", "[fe80::1%eth0]:5000", a unix path,
// "@name" for an abstract unix address, "" for an unnamed unix socket.
std::string format_address(const sock_address& a);

}  // namespace goro::net::detail
