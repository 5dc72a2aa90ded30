#!/usr/bin/env bash
# Side by side: goro, Go and Boost.Fiber on the workloads of
# bench/workloads.tsv, same machine, runs alternating.
#
#   bash bench/compare.sh             # from a clean clone; installs what is missing
#   QUICK=1 bash bench/compare.sh     # tiny sizes, 1 run each: a smoke test, docs untouched
#
# Builds the Release preset's programs (wl_goro, wl_fiber, and wl_go from
# bench/go), then bench/compare.py runs every workload at each procs count
# N times per implementation, alternating run by run (each run a fresh
# process), and prints a Markdown table of medians [min-max] with the
# ratios goro/Go and goro/Fiber; cells whose max/min > 1.5 are flagged.
# Writes the table (compare.md), the raw runs (results.tsv), the run's
# settings (meta.json) and an SVG chart (gnuplot) of the ratios at procs=2
# into build/compare/; a full run (not QUICK) also writes the table into
# docs/performance.md between the compare-table markers and the chart to
# docs/images/compare.svg. `python3 bench/compare.py --rerender DIR` redoes
# table and chart from a finished run's DIR without running anything.
#
# Settings (environment): N (5, runs per implementation and cell),
# PROCS (1,2,8), WORKLOADS (all; comma-separated names), TIMEOUT (300 s per
# run), QUICK=1, NO_DOC=1 (leave docs/ alone), FIBER_SUSPEND (1; 0 lets idle
# Boost.Fiber threads spin, the library's default).
set -euo pipefail
cd "$(dirname "$0")/.."

source .ci/deps.sh
goro_install_deps golang-go libboost-fiber-dev gnuplot-nox

reps=${N:-5}
procs=${PROCS:-1,2,8}
quick=${QUICK:-0}
command="bash bench/compare.sh"
for v in N PROCS WORKLOADS TIMEOUT QUICK FIBER_SUSPEND; do
    if [ -n "${!v:-}" ]; then command="$v=${!v} $command"; fi
done
if [ "$quick" = 1 ]; then reps=${N:-1}; fi

echo "=== building (release): wl_goro, wl_fiber, wl_go ==="
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target wl_goro wl_fiber wl_go

bin=build/release/bench
args=(--reps "$reps" --procs "$procs" --timeout "${TIMEOUT:-300}" --command "$command"
    --bin "goro=$bin/wl_goro" --bin "go=$bin/wl_go" --bin "fiber=$bin/wl_fiber")
if [ -n "${WORKLOADS:-}" ]; then args+=(--workloads "$WORKLOADS"); fi
if [ "$quick" = 1 ]; then
    args+=(--quick --out build/compare-quick)
elif [ "${NO_DOC:-0}" = 1 ]; then
    args+=(--out build/compare)
else
    args+=(--out build/compare --doc docs/performance.md --chart docs/images/compare.svg
        --chart-link images/compare.svg)
fi
echo "=== load: $(uptime) ==="
exec python3 bench/compare.py "${args[@]}"
