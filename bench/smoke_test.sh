#!/usr/bin/env bash
# Smoke tests of the side-by-side comparison (bench/compare.sh), run by
# ctest (bench/CMakeLists.txt, label bench-smoke). Fast and offline.
#
#   smoke_test.sh table               the real table parses; malformed rows
#                                     are rejected, naming file and line
#   smoke_test.sh run <impl> <prog>   prog (goro, go or fiber) runs every
#                                     workload at QUICK sizes on 1, 2 and 8
#                                     procs, lists exactly the table's
#                                     workloads and prints a sane value
#                                     (or n/a with a reason)
#
# Exit 77 (ctest SKIP) when the implementation's program was not built
# (no go, no Boost.Fiber when configuring).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
compare=$here/compare.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case ${1:-} in
table)
    python3 "$compare" --validate-table
    good=$'pingpong\tns/round trip\t10\t5\t-\tunbuffered ping-pong'
    # expect_rejected LABEL ROW MESSAGE: a table of one good row and ROW
    # (line 3) is rejected with MESSAGE and the line number.
    expect_rejected() {
        printf '# test\n%s\n%s\n' "$good" "$2" >"$tmp/t.tsv"
        local out
        if out=$(python3 "$compare" --table "$tmp/t.tsv" --validate-table 2>&1); then
            echo "FAIL ($1): malformed row accepted: $2"
            exit 1
        fi
        if ! grep -q -- "t.tsv:3: .*$3" <<<"$out"; then
            echo "FAIL ($1): rejected, but the message lacks 't.tsv:3: ... $3': $out"
            exit 1
        fi
        echo "ok ($1): $out"
    }
    # The good row alone is accepted (so the rejections below are the rows').
    printf '%s\n' "$good" >"$tmp/t.tsv"
    python3 "$compare" --table "$tmp/t.tsv" --validate-table
    expect_rejected "missing field" $'skynet\tms\t10\t5\tdiv=10' "5 tab-separated fields, want 6"
    expect_rejected "extra field" $'skynet\tms\t10\t5\tdiv=10\tx\ty' "7 tab-separated fields"
    expect_rejected "spaces, not tabs" 'skynet ms 10 5 div=10 tree' "1 tab-separated fields"
    expect_rejected "bad name" $'Sky-net\tms\t10\t5\t-\ttree' "bad name"
    expect_rejected "duplicate" "$good" "listed twice"
    expect_rejected "empty unit" $'skynet\t\t10\t5\t-\ttree' "empty unit"
    expect_rejected "n not a number" $'skynet\tms\tten\t5\t-\ttree' "n 'ten' is not a positive integer"
    expect_rejected "zero quick_n" $'skynet\tms\t10\t0\t-\ttree' "quick_n '0' is not a positive integer"
    expect_rejected "bad params" $'skynet\tms\t10\t5\tdiv:10\ttree' "bad parameter 'div:10'"
    expect_rejected "repeated param" $'skynet\tms\t10\t5\tdiv=1,div=2\ttree' "parameter div given twice"
    expect_rejected "empty description" $'skynet\tms\t10\t5\t-\t ' "empty description"
    ;;
run)
    impl=$2 prog=$3
    if [ ! -x "$prog" ]; then
        case $impl in
        go) why="go (golang-go) was not found when configuring" ;;
        fiber) why="Boost.Fiber (libboost-fiber-dev) was not found when configuring" ;;
        *) why="not built" ;;
        esac
        echo "SKIP: no $impl program ($prog): $why"
        exit 77
    fi
    python3 "$compare" --quick --reps 1 --procs 1,2,8 --timeout 60 --check \
        --bin "$impl=$prog" --out "$tmp" --command "bench/smoke_test.sh run $impl"
    ;;
*)
    echo "usage: $0 table | run <goro|go|fiber> <program>" >&2
    exit 2
    ;;
esac
