#!/usr/bin/env bash
# HTTP load comparison: examples/http_server.cpp (goro) against
# bench/http/server.go (Go net/http), same endpoints, same responses; and
# against bench/http/rawserver (the goro example's design written in Go
# over net.Conn, no net/http), which compares the runtimes doing the same work.
#
#   bash bench/http/run.sh            # from a clean clone; installs what is missing
#
# Each server runs on 2 procs (goro: GORO_MAXPROCS=2, Go: GOMAXPROCS=2); wrk
# (on the same machine, sharing its cores) loads GET / and GET /json. Servers
# alternate, goro first in odd rounds and Go first in even ones, for ROUNDS
# rounds; the table gives the median over rounds of requests/s and of the
# 99th-percentile latency. The table is printed and written into
# docs/performance.md between the http-table markers.
#
# Settings (environment): ROUNDS (3), DURATION (10s), CONNECTIONS (100),
# THREADS (2, wrk's), PROCS (2), WARMUP (2s), RAW=0 (leave rawserver out),
# NO_DOC=1 (do not touch the doc).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-100}
threads=${THREADS:-2}
procs=${PROCS:-2}
warmup=${WARMUP:-2s}

source .ci/deps.sh
goro_install_deps wrk golang-go

echo "=== building goro (release) and the Go server ==="
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target example_http_server
mkdir -p build/http
export GOCACHE="$root/build/gocache" GOPATH="$root/build/gopath" GOPROXY=off GOFLAGS=-mod=mod
go build -o build/http/goserver bench/http/server.go
go build -o build/http/rawserver bench/http/rawserver/main.go
goro_bin=build/release/examples/example_http_server
servers=(goro go)
if [ "${RAW:-1}" != 0 ]; then servers+=(goraw); fi

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# start_server NAME: starts it on a free port; sets server_pid and server_addr.
start_server() {
    local out=build/http/$1.out
    case $1 in
    goro) GORO_MAXPROCS=$procs "$goro_bin" 127.0.0.1:0 >"$out" 2>build/http/$1.err & ;;
    go) GOMAXPROCS=$procs build/http/goserver 127.0.0.1:0 >"$out" 2>build/http/$1.err & ;;
    goraw) GOMAXPROCS=$procs build/http/rawserver 127.0.0.1:0 >"$out" 2>build/http/$1.err & ;;
    esac
    server_pid=$!
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$out" 2>/dev/null; then break; fi
        sleep 0.05
    done
    server_addr=$(sed -n 's/^listening on //p' "$out" | head -1)
    if [ -z "$server_addr" ]; then
        echo "$1 server did not start:" >&2
        cat "$out" build/http/$1.err >&2
        exit 1
    fi
}

# stop_server NAME: SIGTERM, and the graceful shutdown must end with status 0.
stop_server() {
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    if [ "$rc" != 0 ]; then
        echo "$1 server exited with status $rc after SIGTERM" >&2
        cat build/http/$1.err >&2
        exit 1
    fi
}

# CPU time (user + system) the server has used so far, in clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$server_pid/stat"
}

# wrk's "99%  1.23ms" in milliseconds.
p99_ms() {
    awk '$1 == "99%" {
        v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
        if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
        printf "%.2f", v }'
}

results=build/http/results.txt
: >"$results"
echo "=== load: $(uptime) ==="
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    # Odd rounds in the order of $servers, even rounds reversed.
    order=("${servers[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    for name in "${order[@]}"; do
        start_server "$name"
        wrk -t"$threads" -c"$connections" -d"$warmup" "http://$server_addr/" >/dev/null
        for path in / /json; do
            cpu0=$(cpu_ticks)
            out=$(wrk -t"$threads" -c"$connections" -d"$duration" --latency "http://$server_addr$path")
            cpu1=$(cpu_ticks)
            rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
            p99=$(p99_ms <<<"$out")
            # The server's CPU time per request, in microseconds.
            cpu=$(awk -v t="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" \
                '/ requests in / { printf "%.1f", t / hz * 1e6 / $1 }' <<<"$out")
            errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out" | tr '\n' ' ')
            echo "round $round  $name  $path  $rps req/s  p99 $p99 ms  cpu $cpu us/req  $errors"
            echo "$name $path $rps $p99 $cpu" >>"$results"
        done
        stop_server "$name"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(name, path, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name and r[1] == path)
labels = {"go": "Go net/http", "goraw": "Go rawserver"}
print("| endpoint | server | req/s | goro / it | p99 (ms) | CPU µs/req |")
print("|---|---|---:|---:|---:|---:|")
for path in ("/", "/json"):
    base = med("goro", path, 2)
    for name in ("goro", "go", "goraw"):
        if not any(r[0] == name for r in rows):
            continue
        rps, p99, cpu = (med(name, path, c) for c in (2, 3, 4))
        ratio = "" if name == "goro" else f"{base / rps:.2f}"
        print(f"| GET {path} | {labels.get(name, name)} | {rps:,.0f} | {ratio} | {p99:.2f} | {cpu:.1f} |")
PY
)
go_version=$(go version | awk '{print $3}')
note="Measured $(date -u +%Y-%m-%d) by \`bench/http/run.sh\`: $rounds rounds, \`wrk -t$threads -c$connections -d$duration --latency\`, servers on $procs procs, $go_version, load average before $load_before, after $load_after; medians over rounds."
echo
echo "$table"
echo
echo "$note"

if [ "${NO_DOC:-0}" != 1 ]; then
    python3 - docs/performance.md "$table" "$note" <<'PY'
import sys
path, table, note = sys.argv[1:4]
text = open(path).read()
begin, end = "<!-- http-table:begin -->", "<!-- http-table:end -->"
if begin not in text or end not in text:
    sys.exit(f"{path}: markers {begin} / {end} not found")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{table}\n\n{note}\n{end}{tail}")
PY
    echo "written to docs/performance.md"
fi
