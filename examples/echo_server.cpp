// echo_server: a TCP echo server in the shape of Go's net/http: one
// goroutine accepts, and every connection gets a goroutine of its own that
// echoes bytes back until the client is done.
//
//   example_echo_server 127.0.0.1:0     serve; prints "listening on HOST:PORT"
//   example_echo_server                 self-check: serve on 127.0.0.1:0 and
//                                       run 200 clients against it
//
// Running out of descriptors (EMFILE) is not fatal: accept throws it, and
// the server sleeps 5 ms, doubling up to 1 s, then accepts again — the
// connection waits in the kernel's queue meanwhile (net/http does the same).
// A real server also raises its descriptor limit first; so does this one.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

#include "goro/goro.hpp"

using namespace std::chrono_literals;
namespace net = goro::net;

namespace {

// Each connection: echo until end of stream. A reset peer is its problem;
// the conn's destructor closes the socket either way.
void echo(net::conn c) {
    char buf[4096];
    try {
        while (std::size_t n = c.read(buf, sizeof buf)) c.write_all(buf, n);
    } catch (const std::system_error&) {
    }
}

bool out_of_descriptors(const std::error_code& ec) {
    return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system;
}

// Accepts until the listener is closed.
void serve(net::listener& ln) {
    auto backoff = 0ms;
    for (;;) {
        net::conn c;
        try {
            c = ln.accept();
        } catch (const std::system_error& e) {
            if (e.code() == goro::errc::closed) return;
            if (!out_of_descriptors(e.code())) throw;
            backoff = backoff == 0ms ? 5ms : std::min(backoff * 2, std::chrono::milliseconds(1s));
            std::fprintf(stderr, "echo_server: %s; retrying in %lld ms\n", e.what(),
                         static_cast<long long>(backoff.count()));
            goro::sleep_for(backoff);
            continue;
        }
        backoff = 0ms;
        goro::go(echo, std::move(c));
    }
}

void raise_descriptor_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

// The self-check: clients send a few KiB each and compare what comes back.
int self_check() {
    return goro::run([]() -> int {
        net::listener ln = net::listen("tcp", "127.0.0.1:0");
        std::printf("listening on %s\n", ln.address().c_str());
        goro::wait_group server;
        server.go([&] { serve(ln); });

        constexpr int clients = 200;
        std::atomic<int> failed{0};
        std::atomic<long> echoed{0};
        goro::wait_group wg;
        for (int i = 0; i < clients; ++i)
            wg.go([&, i] {
                try {
                    net::conn c = net::dial("tcp", ln.address(), 10s);
                    std::string sent(1000 + 37 * i, static_cast<char>('A' + i % 26));
                    c.write_all(sent);
                    c.shutdown_write();  // "that is all": the server sees EOF
                    std::string got;
                    char buf[1024];
                    while (std::size_t n = c.read(buf, sizeof buf)) got.append(buf, n);
                    if (got != sent) throw std::runtime_error("echo differs");
                    echoed += static_cast<long>(got.size());
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "client %d: %s\n", i, e.what());
                    ++failed;
                }
            });
        wg.wait();
        ln.close();  // serve() returns
        server.wait();
        if (failed != 0) {
            std::printf("echo_server self-check: %d of %d clients failed\n", failed.load(),
                        clients);
            return 1;
        }
        std::printf("echo_server self-check: %d clients, %ld bytes echoed exactly\n", clients,
                    echoed.load());
        return 0;
    });
}

}  // namespace

int main(int argc, char** argv) {
    raise_descriptor_limit();
    if (argc < 2) return self_check();
    try {
        return goro::run([&] {
            net::listener ln = net::listen("tcp", argv[1]);
            // The first line is the address with the real port; whoever
            // started us may be waiting for it.
            std::printf("listening on %s\n", ln.address().c_str());
            std::fflush(stdout);
            serve(ln);
            return 0;
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
