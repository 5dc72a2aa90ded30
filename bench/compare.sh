#!/usr/bin/env bash
# Side-by-side: the Go runtime (bench/go) and goro (build/release) on the same
# workloads, same machine, one after the other. Prints a Markdown table of
# medians (Go: median of 5 runs; goro: median of 5 repetitions) and writes it
# to build/compare.md. Needs `go` (golang-go) and a Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
out=build/compare.md
mkdir -p build
export GOCACHE="$PWD/build/gocache" GOPATH="$PWD/build/gopath" GOPROXY=off GOFLAGS=-mod=mod
(cd bench/go && go build -o ../../build/gobench .)

# workload | goro benchmark name | goro counter (empty: real time) | unit scale
map=(
    "spawn|BM_Spawn/real_time|per_goroutine"
    "gosched|BM_Yield/real_time|"
    "gosched2|BM_Yield2/real_time|per_yield"
    "pingpong|BM_PingPong/real_time|"
    "spsc|BM_Spsc/real_time|per_item"
    "mpmc|BM_Mpmc4x4/real_time|per_item"
    "select2|BM_Select2/real_time|"
    "select8|BM_Select8/real_time|"
    "timer|BM_TimerCreateStop/real_time|"
    "mutex_uncontended|BM_MutexUncontended/real_time|"
    "mutex_contended|BM_MutexContended/real_time|per_lock"
    "context_tree|BM_ContextTree10k/real_time|"
    "errgroup|BM_Errgroup10k/0/real_time|"
    "errgroup_limit8|BM_Errgroup10k/8/real_time|"
)

go_figures=$(build/gobench)
goro_json=$("$build/bench/goro_bench" --benchmark_repetitions=5 --benchmark_min_time=0.3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null)

# Value of a goro benchmark's median: the counter (seconds per item, an
# inverted rate) in ns, or the real time in the benchmark's own unit.
goro_value() {
    python3 -c '
import json, sys
name, counter = sys.argv[1] + "_median", sys.argv[2]
for b in json.loads(sys.stdin.read())["benchmarks"]:
    if b["name"] == name:
        print("%.1f" % (b[counter] * 1e9 if counter else b["real_time"]))
' "$1" "$2" <<<"$goro_json"
}

{
    echo "| workload | Go 1.19 | goro | unit | goro / Go |"
    echo "|---|---:|---:|---|---:|"
    for entry in "${map[@]}"; do
        IFS='|' read -r work name counter <<<"$entry"
        read -r _ _ gval unit <<<"$(grep "^go $work " <<<"$go_figures" || echo "go $work n/a -")"
        val=$(goro_value "$name" "$counter")
        [ -n "$val" ] || val=n/a
        ratio=$(awk -v a="$val" -v b="$gval" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
        echo "| $work | $gval | $val | $unit | $ratio |"
    done
    for prog in skynet sleepers; do
        gval=$(grep "^go $prog " <<<"$go_figures" | awk '{print $3}')
        val=$("$build/bench/bench_$prog" 5 | awk '/median/ { print $(NF-1) }')
        ratio=$(awk -v a="$val" -v b="$gval" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
        echo "| $prog | $gval | $val | ms | $ratio |"
    done
    gval=$(build/gobench rss | awk '{print $3}')
    val=$("$build/bench/bench_million" | awk '/goro rss/ { print $3 }')
    echo "| rss (1M parked) | $gval | $val | bytes/goroutine | $(awk -v a="$val" -v b="$gval" 'BEGIN { printf "%.2f", a / b }') |"
} | tee "$out"
