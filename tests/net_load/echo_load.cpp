// goro_echo_load: N connections (10,000 by default) held open at once
// against example_echo_server running in a child process.
//
//   goro_echo_load PATH_TO_example_echo_server [--conns N] [--bytes B]
//                  [--timeout S] [--server-fd-limit L]
//
// 1. raises this process's descriptor limit (N + 64 needed; fails with a
//    message if the hard limit is lower);
// 2. starts `example_echo_server 127.0.0.1:0` and reads the port from its
//    first line;
// 3. one goroutine per connection dials, then waits until all N are
//    connected; each then sends B bytes (a pattern of its own) while reading
//    the echo back, and checks every byte; then waits until all N are
//    checked, while every connection is still open, and the server's
//    descriptor count is read from /proc (it must hold N connections);
// 4. closes everything, stops the server, and reports the totals.
//
// With --server-fd-limit L (below N), the server's descriptor limit is cut
// to L once it runs (prlimit), and the connections are not held together:
// each dials, checks its echo, holds its connection 250 ms and closes. The
// server must run out of descriptors (EMFILE), back off, and serve every
// connection anyway as the earlier ones close; its stderr (a file) must
// show the back-off.
// Exit status 0 on success; 1 with a message on any failure, including a
// run that does not finish within --timeout seconds (default 240).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;
namespace net = goro::net;

extern char** environ;

namespace {

pid_t server_pid = -1;

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "goro_echo_load: FAILED: %s\n", why.c_str());
    if (server_pid > 0) ::kill(server_pid, SIGKILL);
    std::_Exit(1);
}

void raise_descriptor_limit(rlim_t need) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail("getrlimit: " + std::string(strerror(errno)));
    if (rl.rlim_cur >= need) return;
    if (rl.rlim_max < need)
        fail("needs " + std::to_string(need) + " descriptors, but the hard limit is " +
             std::to_string(rl.rlim_max) + " (raise it: ulimit -Hn)");
    rl.rlim_cur = need;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail("setrlimit: " + std::string(strerror(errno)));
}

// Starts the server with its stdout on a pipe; returns the address it
// prints on its first line ("listening on 127.0.0.1:PORT").
std::string start_server(const char* path, int& out_fd, const std::string& err_path) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) fail("pipe2");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (!err_path.empty())
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char arg0[] = "example_echo_server", arg1[] = "127.0.0.1:0";
    char* argv[] = {arg0, arg1, nullptr};
    const int e = ::posix_spawn(&server_pid, path, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (e != 0) fail(std::string("cannot start ") + path + ": " + strerror(e));
    std::string line;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (line.find('\n') == std::string::npos) {
        pollfd p{out[0], POLLIN, 0};
        if (std::chrono::steady_clock::now() > give_up) fail("the server printed no address");
        if (::poll(&p, 1, 1000) <= 0) continue;
        char buf[256];
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) fail("the server exited before printing its address");
        line.append(buf, static_cast<std::size_t>(n));
    }
    out_fd = out[0];  // kept open while the server runs
    const std::string prefix = "listening on ";
    if (line.rfind(prefix, 0) != 0) fail("unexpected first line from the server: " + line);
    return line.substr(prefix.size(), line.find('\n') - prefix.size());
}

int descriptors_of(pid_t pid) {
    std::error_code ec;
    int n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

unsigned char pattern(long conn, long i) {
    return static_cast<unsigned char>((conn * 131 + i * 7 + (i >> 8)) & 0xff);
}

struct totals {
    std::atomic<long> connected{0}, verified{0}, bytes_sent{0}, bytes_echoed{0}, failures{0};
};

// Released when all `n` connections have arrived (a failed one arrives at
// every barrier it had not reached, so a failure never hangs the others).
struct barrier {
    explicit barrier(long n_) : n(n_) {}
    void arrive() {
        if (arrived.fetch_add(1) + 1 == n) open.close();
    }
    void wait() const { (void)open.recv(); }
    const long n;
    std::atomic<long> arrived{0};
    goro::chan<goro::unit> open = goro::make_chan<goro::unit>();
};

// Up to this many bytes fit in the socket buffers on the way there and
// back, so a connection may send them all before it reads: one goroutine
// per connection. More, and a second goroutine writes while the first
// reads (else both sides would wait for room forever).
constexpr long fits_in_buffers = 64 * 1024;

// Sends `bytes` of connection id's pattern while reading the echo back and
// checking every byte.
void exchange(net::conn& c, long id, long bytes, totals& t) {
    std::exception_ptr write_error;
    auto send = [&] {
        try {
            std::vector<unsigned char> out(static_cast<std::size_t>(bytes));
            for (long i = 0; i < bytes; ++i) out[static_cast<std::size_t>(i)] = pattern(id, i);
            c.write_all(out.data(), out.size());
            t.bytes_sent += bytes;
        } catch (...) {
            write_error = std::current_exception();
        }
    };
    goro::wait_group writer;
    if (bytes <= fits_in_buffers) {
        send();
        if (write_error) std::rethrow_exception(write_error);
    } else {
        writer.go(send);
    }
    std::exception_ptr read_error;
    try {
        unsigned char buf[2048];
        long got = 0;
        while (got < bytes) {
            const std::size_t want =
                std::min<std::size_t>(sizeof buf, static_cast<std::size_t>(bytes - got));
            const std::size_t n = c.read(buf, want);
            if (n == 0) throw std::runtime_error("the server closed early");
            for (std::size_t k = 0; k < n; ++k)
                if (buf[k] != pattern(id, got + static_cast<long>(k)))
                    throw std::runtime_error(
                        "echoed byte " + std::to_string(got + static_cast<long>(k)) + " differs");
            got += static_cast<long>(n);
        }
        t.bytes_echoed += got;
    } catch (...) {
        read_error = std::current_exception();
        c.close();  // wakes the writer
    }
    writer.wait();
    if (read_error) std::rethrow_exception(read_error);
    if (write_error) std::rethrow_exception(write_error);
}

// One connection's life (steps 3 and 4 above).
void client(long id, const std::string& address, long bytes, totals& t, barrier& connected,
            barrier& verified, goro::chan<goro::unit> release) {
    int reached = 0;
    try {
        net::conn c = net::dial("tcp", address, 60s);
        t.connected += 1;
        reached = 1;
        connected.arrive();
        connected.wait();
        c.set_deadline(goro::clock::now() + 120s);  // a lost echo fails, not hangs
        exchange(c, id, bytes, t);
        t.verified += 1;
        reached = 2;
        verified.arrive();
        (void)release.recv();  // every connection stays open until all are checked
    } catch (const std::exception& e) {
        if (t.failures.fetch_add(1) < 10)
            std::fprintf(stderr, "goro_echo_load: connection %ld: %s\n", id, e.what());
        if (reached < 1) connected.arrive();
        if (reached < 2) verified.arrive();
    }
}

// --server-fd-limit: one connection at a time, closed after a short hold.
void churn_client(long id, const std::string& address, long bytes, totals& t) {
    try {
        net::conn c = net::dial("tcp", address, 60s);
        t.connected += 1;
        c.set_deadline(goro::clock::now() + 120s);
        exchange(c, id, bytes, t);
        t.verified += 1;
        // So that the server holds many at once: 1500 connections must
        // overlap past its 1000 descriptors (50 ms was not always enough
        // when the two workers were shared with other processes).
        goro::sleep_for(250ms);
    } catch (const std::exception& e) {
        if (t.failures.fetch_add(1) < 10)
            std::fprintf(stderr, "goro_echo_load: connection %ld: %s\n", id, e.what());
    }
}

std::string read_file(const std::string& path) {
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "r")) {
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) text.append(buf, n);
        std::fclose(f);
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) fail("usage: goro_echo_load PATH_TO_example_echo_server [--conns N] [--bytes B]");
    long conns = 10000, bytes = 4096, timeout_s = 240, server_fd_limit = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const long v = std::atol(argv[i + 1]);
        if (flag == "--conns")
            conns = v;
        else if (flag == "--bytes")
            bytes = v;
        else if (flag == "--timeout")
            timeout_s = v;
        else if (flag == "--server-fd-limit")
            server_fd_limit = v;
        else
            fail("unknown flag " + flag);
    }
    raise_descriptor_limit(static_cast<rlim_t>(conns + 64));
    int server_out = -1;
    const std::string err_path =
        server_fd_limit ? "/tmp/goro_echo_load_" + std::to_string(::getpid()) + ".stderr" : "";
    const std::string address = start_server(argv[1], server_out, err_path);
    if (server_fd_limit) {
        const rlimit cut{static_cast<rlim_t>(server_fd_limit),
                         static_cast<rlim_t>(server_fd_limit)};
        if (::prlimit(server_pid, RLIMIT_NOFILE, &cut, nullptr) != 0)
            fail("prlimit on the server: " + std::string(strerror(errno)));
    }
    std::printf("goro_echo_load: server %d on %s; %ld connections, %ld bytes each\n",
                static_cast<int>(server_pid), address.c_str(), conns, bytes);
    std::fflush(stdout);

    std::atomic<bool> finished{false};
    std::thread watchdog([&] {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
        while (!finished.load()) {
            if (std::chrono::steady_clock::now() > give_up)
                fail("not done after " + std::to_string(timeout_s) + " s");
            std::this_thread::sleep_for(100ms);
        }
    });

    const auto start = std::chrono::steady_clock::now();
    totals t;
    int server_fds = 0;
    goro::run([&] {
        goro::wait_group wg;
        if (server_fd_limit) {
            for (long id = 0; id < conns; ++id)
                wg.go([&, id] { churn_client(id, address, bytes, t); });
            wg.wait();
            return;
        }
        barrier connected(conns), verified(conns);
        auto release = goro::make_chan<goro::unit>();
        for (long id = 0; id < conns; ++id)
            wg.go([&, id] { client(id, address, bytes, t, connected, verified, release); });
        // Every client has checked its echo and still holds its connection.
        verified.wait();
        server_fds = descriptors_of(server_pid);
        release.close();
        wg.wait();
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    finished = true;
    watchdog.join();

    ::kill(server_pid, SIGTERM);
    int status = 0;
    ::waitpid(server_pid, &status, 0);
    server_pid = -1;
    ::close(server_out);

    std::printf(
        "goro_echo_load: %ld connected, %ld verified, %ld failed; %ld bytes sent, %ld "
        "echoed; %.1f s\n",
        t.connected.load(), t.verified.load(), t.failures.load(), t.bytes_sent.load(),
        t.bytes_echoed.load(), seconds);
    if (!server_fd_limit)
        std::printf("goro_echo_load: the server held %d descriptors with all open\n", server_fds);
    if (t.failures != 0) fail(std::to_string(t.failures.load()) + " connections failed");
    if (t.verified != conns || t.bytes_echoed != conns * bytes || t.bytes_sent != conns * bytes)
        fail("totals differ from " + std::to_string(conns) + " x " + std::to_string(bytes));
    if (server_fd_limit) {
        const std::string err = read_file(err_path);
        ::unlink(err_path.c_str());
        if (err.find("retrying in") == std::string::npos)
            fail("the server never backed off (its stderr: \"" + err.substr(0, 300) + "\")");
        std::printf("goro_echo_load: the server backed off %zu times\n",
                    static_cast<std::size_t>(std::count(err.begin(), err.end(), '\n')));
    } else if (server_fds < conns) {
        fail("the server held " + std::to_string(server_fds) + " descriptors, fewer than " +
             std::to_string(conns) + " connections");
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM)
        fail("the server did not run until stopped (status " + std::to_string(status) + ")");
    std::printf("goro_echo_load: ok\n");
    return 0;
}
