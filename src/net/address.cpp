// net/address.cpp — parsing and formatting of goro::net addresses (see
// address.hpp). Pure functions: no state, no locks, nothing that blocks
// (if_nametoindex for an IPv6 zone reads the kernel's interface table).
#include "net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include "goro/errors.hpp"

namespace goro::net::detail {

namespace {

std::string quoted(std::string_view s) {
    std::string q = "\"";
    q.append(s);
    q += '"';
    return q;
}

[[noreturn]] void malformed(const char* call, std::string_view address, const char* why) {
    throw misuse_error(std::string(call) + ": address " + quoted(address) + ": " + why);
}

struct host_port {
    std::string_view host;
    unsigned short port = 0;
};

// "host:port", "[host]:port", ":port". IPv6 hosts need the brackets.
host_port split_host_port(std::string_view address, const char* call) {
    std::string_view host, port;
    if (!address.empty() && address.front() == '[') {
        const std::size_t close = address.find(']');
        if (close == std::string_view::npos) malformed(call, address, "missing ']'");
        host = address.substr(1, close - 1);
        std::string_view rest = address.substr(close + 1);
        if (rest.empty()) malformed(call, address, "missing port");
        if (rest.front() != ':') malformed(call, address, "unexpected characters after ']'");
        port = rest.substr(1);
    } else {
        const std::size_t colon = address.rfind(':');
        if (colon == std::string_view::npos) malformed(call, address, "missing port");
        host = address.substr(0, colon);
        port = address.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            malformed(call, address, "too many colons (an IPv6 host goes in brackets)");
        if (host.find_first_of("[]") != std::string_view::npos)
            malformed(call, address, "unexpected bracket");
    }
    if (port.empty()) malformed(call, address, "missing port");
    unsigned long value = 0;
    for (char c : port) {
        if (c < '0' || c > '9')
            malformed(call, address, "the port is not a number (no service names here)");
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (value > 65535) malformed(call, address, "port out of range (0..65535)");
    }
    return {host, static_cast<unsigned short>(value)};
}

sock_address ipv4(in_addr addr, unsigned short port) {
    sock_address a;
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = addr;
    a.len = sizeof(sockaddr_in);
    return a;
}

sock_address ipv6(const in6_addr& addr, unsigned short port, std::uint32_t scope) {
    sock_address a;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = addr;
    sin6->sin6_scope_id = scope;
    a.len = sizeof(sockaddr_in6);
    return a;
}

in_addr v4_loopback() {
    in_addr a{};
    a.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

in_addr v4_any() {
    in_addr a{};
    a.s_addr = htonl(INADDR_ANY);
    return a;
}

// An IPv6 zone ("eth0" or an interface index), or misuse.
std::uint32_t parse_zone(std::string_view zone, std::string_view address, const char* call) {
    if (zone.empty()) malformed(call, address, "empty IPv6 zone");
    if (zone.find_first_not_of("0123456789") == std::string_view::npos) {
        if (zone.size() > 9) malformed(call, address, "IPv6 zone out of range");
        return static_cast<std::uint32_t>(std::stoul(std::string(zone)));
    }
    const unsigned index = ::if_nametoindex(std::string(zone).c_str());
    if (index == 0) malformed(call, address, "unknown IPv6 zone (no such interface)");
    return index;
}

sock_address parse_ip(network net, const host_port& hp, bool listening, std::string_view address,
                      const char* call) {
    std::string_view host = hp.host;
    if (host.empty() || host == "localhost") {
        const bool any = host.empty() && listening;
        if (net == network::tcp6) return ipv6(any ? in6addr_any : in6addr_loopback, hp.port, 0);
        if (net == network::tcp && any) {
            sock_address a = ipv6(in6addr_any, hp.port, 0);
            a.dual_stack = true;
            return a;
        }
        return ipv4(any ? v4_any() : v4_loopback(), hp.port);
    }
    if (host.size() > 64) malformed(call, address, "not a numeric IP address (no DNS here)");
    std::string text(host.substr(0, host.find('%')));
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        if (text.size() != host.size()) malformed(call, address, "a zone on an IPv4 address");
        if (net == network::tcp6) malformed(call, address, "not an IPv6 address (network tcp6)");
        return ipv4(v4, hp.port);
    }
    if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1)
        malformed(call, address, "not a numeric IP address (no DNS here)");
    const std::uint32_t scope =
        text.size() == host.size() ? 0 : parse_zone(host.substr(text.size() + 1), address, call);
    // An IPv4-mapped address is IPv4 unless tcp6 asks for IPv6 (as Go).
    if (IN6_IS_ADDR_V4MAPPED(&v6) && net != network::tcp6) {
        std::memcpy(&v4, &v6.s6_addr[12], sizeof v4);
        return ipv4(v4, hp.port);
    }
    if (net == network::tcp4) malformed(call, address, "not an IPv4 address (network tcp4)");
    sock_address a = ipv6(v6, hp.port, scope);
    a.dual_stack = net == network::tcp && listening && IN6_IS_ADDR_UNSPECIFIED(&v6);
    return a;
}

sock_address parse_unix(std::string_view path, const char* call) {
    sock_address a;
    auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage);
    sun->sun_family = AF_UNIX;
    constexpr std::size_t room = sizeof(sun->sun_path);  // 108 on Linux
    if (path.empty()) malformed(call, path, "empty unix socket path");
    if (path.front() == '@') {
        // Abstract: sun_path[0] == 0, the name follows, its length is in
        // the address length (no terminating byte).
        if (path.size() > room) malformed(call, path, "abstract unix name too long");
        std::memcpy(sun->sun_path + 1, path.data() + 1, path.size() - 1);
        a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
        return a;
    }
    if (path.find('\0') != std::string_view::npos) malformed(call, path, "NUL in unix path");
    if (path.size() >= room) malformed(call, path, "unix socket path too long (107 bytes at most)");
    std::memcpy(sun->sun_path, path.data(), path.size());
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
}

}  // namespace

network parse_network(std::string_view name, const char* call) {
    if (name == "tcp") return network::tcp;
    if (name == "tcp4") return network::tcp4;
    if (name == "tcp6") return network::tcp6;
    if (name == "unix") return network::unix_stream;
    throw misuse_error(std::string(call) + ": unknown network " + quoted(name) +
                       " (expected tcp, tcp4, tcp6 or unix)");
}

sock_address parse_address(network net, std::string_view address, bool listening,
                           const char* call) {
    if (net == network::unix_stream) return parse_unix(address, call);
    return parse_ip(net, split_host_port(address, call), listening, address, call);
}

std::string format_address(const sock_address& a) {
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    switch (a.family()) {
        case AF_INET: {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.storage);
            ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
            return std::string(text) + ":" + std::to_string(ntohs(sin->sin_port));
        }
        case AF_INET6: {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
            ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
            std::string s = "[";
            s += text;
            if (sin6->sin6_scope_id != 0) {
                char name[IF_NAMESIZE];
                s += '%';
                s += ::if_indextoname(sin6->sin6_scope_id, name)
                         ? std::string(name)
                         : std::to_string(sin6->sin6_scope_id);
            }
            return s + "]:" + std::to_string(ntohs(sin6->sin6_port));
        }
        case AF_UNIX: {
            const auto* sun = reinterpret_cast<const sockaddr_un*>(&a.storage);
            const std::size_t offset = offsetof(sockaddr_un, sun_path);
            if (a.len <= offset) return {};  // unnamed
            const std::size_t n = a.len - offset;
            if (sun->sun_path[0] != '\0')
                return std::string(sun->sun_path, ::strnlen(sun->sun_path, n));
            std::string s(n, '@');  // abstract: '@' for the leading NUL
            std::memcpy(s.data() + 1, sun->sun_path + 1, n - 1);
            return s;
        }
        default:
            return {};
    }
}

}  // namespace goro::net::detail
