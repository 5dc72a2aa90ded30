#!/usr/bin/env python3
"""Hostile clients against an HTTP server binary that takes a listen address
and prints "listening on HOST:PORT" (examples/http_server.cpp, or
bench/http/server.go built):

    python3 bench/http/hostile.py build/release/examples/example_http_server
    python3 bench/http/hostile.py build/http/goserver

Each check starts its own server, attacks it, checks that it still answers a
well-behaved client quickly, and (most checks) stops it with SIGTERM, which
must end it with status 0 within a few seconds. Prints one line per check;
exits 1 if any failed.
"""
import os
import socket
import subprocess
import sys
import threading
import time

BINARY = None
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = b"Hello, World!"


class Server:
    def __init__(self, nofile=None):
        cmd = [BINARY, "127.0.0.1:0"]
        if nofile:
            cmd = ["prlimit", f"--nofile={nofile}"] + cmd
        env = dict(os.environ, GORO_MAXPROCS="2", GOMAXPROCS="2")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        host, port = line.split()[-1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.stderr = b""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for chunk in iter(lambda: self.proc.stderr.read(256), b""):
            self.stderr += chunk

    def stop(self, limit=10.0):
        """SIGTERM; returns (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.terminate()
        try:
            rc = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "hung"
        return rc, time.monotonic() - t0

    def connect(self, timeout=5.0):
        s = socket.create_connection(self.addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def read_response(s):
    """One response (status, headers dict, body) or None at end of stream."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def healthy(server, limit=1.0):
    """A well-behaved client gets its answer within `limit` seconds."""
    t0 = time.monotonic()
    with server.connect() as s:
        s.sendall(REQ)
        r = read_response(s)
    return r is not None and r[2] == HELLO and time.monotonic() - t0 < limit


def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def check_slowloris(server):
    """50 clients trickle a header a byte every 0.5 s; others are still served,
    and the trickling ones are cut off by the read timeout (10 s)."""
    socks = [server.connect() for _ in range(50)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\n")
    t0 = time.monotonic()
    ok = healthy(server)
    cut = 0
    while time.monotonic() - t0 < 15 and cut < len(socks):
        for s in list(socks):
            try:
                s.send(b"X")
            except OSError:
                socks.remove(s)
                cut += 1
        time.sleep(0.5)
    ok = ok and healthy(server)
    return ok and cut == 50, f"{cut}/50 cut off after {time.monotonic() - t0:.1f} s"


def check_vanish(server):
    """Clients ask for many responses and vanish without reading them."""
    for _ in range(50):
        s = server.connect()
        s.sendall(REQ * 2000)
        s.close()
    for _ in range(20):
        s = server.connect()
        s.sendall(REQ * 2000)
        s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # reset
    return healthy(server), ""


def check_pipelining(server):
    """1000 requests in one write: 1000 responses, in order."""
    with server.connect(timeout=10) as s:
        s.sendall((REQ + b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n") * 500)
        data = b""
        want = 1000
        while data.count(b"HTTP/1.1 200 OK") < want or not data.endswith(b"}"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    got = data.count(b"HTTP/1.1 200 OK")
    order = data.count(b"Hello, World!HTTP/1.1 200 OK")  # each hello followed by the next status line
    return got == want and order >= 499, f"{got} responses"


def check_huge_header(server):
    """A 1 MiB header: refused (431), connection closed, server fine."""
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        status = None
        try:
            s.sendall(b"a" * (1 << 20))
            r = read_response(s)
            status = r and r[0]
        except (ConnectionResetError, BrokenPipeError):
            status = "reset"
        closed = closed_by_peer(s, 3)
    return status in (431, "reset") and closed and healthy(server), f"status {status}"


def check_garbage(server):
    """Binary junk, NULs, bare CRs: 400 or a close, never a crash."""
    junk = [b"\x00" * 100 + b"\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
            bytes(range(256)) + b"\r\n\r\n", b"GET /\rHTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b"\r\n" * 5000]
    statuses = []
    for j in junk:
        with server.connect() as s:
            try:
                s.sendall(j)
                r = read_response(s)
                statuses.append(r and r[0])
            except (ConnectionResetError, BrokenPipeError):
                statuses.append("reset")
    return all(st in (400, 431, "reset", None) for st in statuses) and healthy(server), str(statuses)


def check_half_close(server):
    """A request followed by the client's end of stream is still answered."""
    with server.connect() as s:
        s.sendall(REQ)
        s.shutdown(socket.SHUT_WR)
        r = read_response(s)
        closed = closed_by_peer(s, 3)
    return r is not None and r[2] == HELLO and closed, ""


def check_idle_at_shutdown(server):
    """1000 idle keep-alive connections when SIGTERM comes: all closed, exit 0, fast."""
    socks = []
    for _ in range(1000):
        s = server.connect()
        s.sendall(REQ)
        read_response(s)
        socks.append(s)
    rc, took = server.stop()
    closed = sum(closed_by_peer(s, 2) for s in socks)
    for s in socks:
        s.close()
    return rc == 0 and closed == 1000 and took < 3, f"exit {rc} in {took:.2f} s, {closed}/1000 closed"


def check_emfile(_):
    """Descriptor limit 64: 150 clients connect; accept fails with EMFILE and
    backs off; the server neither exits nor spins, and serves again once the
    clients leave. Not meaningful on an UndefinedBehaviorSanitizer build:
    its vptr check opens a pipe to test memory, and with no descriptor left
    it reports a valid std::system_error as "invalid vptr" and exits 1 (a
    ten-line program throwing one after exhausting RLIMIT_NOFILE does too)."""
    server = Server(nofile=64)
    socks = []
    for _ in range(150):
        try:
            socks.append(server.connect(timeout=1))
        except OSError:
            break
    t0 = time.monotonic()
    cpu0 = cpu_seconds(server.proc.pid)
    time.sleep(2)
    cpu = cpu_seconds(server.proc.pid) - cpu0
    alive = server.proc.poll() is None
    for s in socks:
        s.close()
    time.sleep(1.5)  # the backoff is at most 1 s
    ok = alive and healthy(server, limit=3)
    rc, _ = server.stop()
    logged = server.stderr.count(b"\n")
    return ok and rc == 0 and cpu < 0.5, (f"cpu {cpu:.2f} s in {time.monotonic() - t0:.1f} s while "
                                          f"out of descriptors, {logged} log lines, exit {rc}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    global BINARY
    BINARY = sys.argv[1]
    checks = [check_slowloris, check_vanish, check_pipelining, check_huge_header, check_garbage,
              check_half_close, check_idle_at_shutdown, check_emfile]
    only = sys.argv[2:]
    failed = 0
    for check in checks:
        if only and check.__name__ not in only:
            continue
        server = Server() if check is not check_emfile else None
        try:
            ok, detail = check(server)
        except Exception as e:  # noqa: BLE001 - report and go on
            ok, detail = False, f"{type(e).__name__}: {e}"
        if server and server.proc.poll() is None:
            rc, took = server.stop()
            if rc != 0:
                ok, detail = False, f"{detail}; exit {rc} after SIGTERM"
        print(f"{'ok  ' if ok else 'FAIL'}  {check.__name__}: {detail}", flush=True)
        failed += not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
