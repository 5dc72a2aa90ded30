#!/usr/bin/env bash
# A program built with a sanitizer over an ordinary goro (compiled without
# one): workload.cpp must run clean — not one line from the sanitizer, not
# even a warning — and bug.cpp's deliberate bug must still be reported.
#
# Usage: check.sh <thread|address> <c++ compiler> <scratch dir> <goro flags...>
#   goro flags: how to compile and link against goro, as a program would
#   (-I... -L... -lgoro -Wl,-rpath,...), or --pkg-config <dir of goro.pc>.
set -euo pipefail
san=$1 cxx=$2 scratch=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"
mkdir -p "$scratch"
if [[ ${1:-} == --pkg-config ]]; then  # an installed goro: its goro.pc
    export PKG_CONFIG_PATH=$2
    # shellcheck disable=SC2046  # the flags are words
    set -- $(pkg-config --cflags --libs goro)
fi

case $san in
thread)
    flags=(-fsanitize=thread)
    export TSAN_OPTIONS="halt_on_error=1:exitcode=66"
    bug=race
    report="WARNING: ThreadSanitizer: data race"
    ;;
address)
    flags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
    export ASAN_OPTIONS="detect_leaks=1:exitcode=66"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    bug=uaf
    report="ERROR: AddressSanitizer: heap-use-after-free"
    ;;
*)
    echo "unknown sanitizer $san"
    exit 2
    ;;
esac
# -g1: line tables, all a sanitizer's report needs (file:line in bug.cpp).
flags+=(-std=c++20 -g1 -O1 -fno-omit-frame-pointer -pthread)

for prog in workload bug; do
    "$cxx" "${flags[@]}" -o "$scratch/$prog" "$here/$prog.cpp" "$@"
done
ldd "$scratch/workload" | grep -E "goro|san" || true

status=0
"$scratch/workload" 2 >"$scratch/workload.out" 2>"$scratch/workload.err" || status=$?
cat "$scratch/workload.out"
if ((status != 0)) || grep -qiE "sanitizer|WARNING|ERROR" "$scratch/workload.err"; then
    echo "workload: exit status $status; its stderr:"
    head -80 "$scratch/workload.err"
    exit 1
fi
grep -q "all checks passed" "$scratch/workload.out" || { echo "workload did not finish"; exit 1; }
echo "workload: clean under $san"

status=0
"$scratch/bug" $bug >"$scratch/bug.out" 2>"$scratch/bug.err" || status=$?
if ((status == 0)) || ! grep -qF "$report" "$scratch/bug.err" || ! grep -qF "bug.cpp" "$scratch/bug.err"; then
    echo "bug $bug: exit status $status, expected a report ($report) naming bug.cpp; its stderr:"
    head -60 "$scratch/bug.err"
    exit 1
fi
echo "bug $bug: reported ($(grep -m1 -F "$report" "$scratch/bug.err"))"
