#!/usr/bin/env bash
# The offline trace viewer (tools/trace_viewer.html) draws a real trace:
# runs the skynet example with tracing on (1000 leaves: 1111 goroutines),
# embeds the trace in a copy of the viewer, loads it in headless Chromium
# and compares the summary the viewer wrote into the DOM with counts taken
# from the JSON here. The trace writer puts one event per line, which is
# what makes grep enough to count.
# Usage: check.sh <example_skynet> <trace_viewer.html> <scratch dir> [screenshot.png]
set -euo pipefail
skynet=$1 viewer=$2 dir=$3 shot=${4:-}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "FAIL: chromium is not installed (tests/run installs it: .ci/deps.sh)" >&2
    exit 1
fi
rm -rf "$dir" && mkdir -p "$dir"
"$skynet" --trace "$dir/trace.json" 1000

# Expected: lanes = tracks with slices or instants; slices; distinct goroutine ids.
want_slices=$(grep -c '"ph":"X"' "$dir/trace.json")
want_lanes=$(grep -E '"ph":"(X|i)"' "$dir/trace.json" | grep -o '"tid":[0-9]*' | sort -u | wc -l)
want_gs=$(grep '"ph":"X"' "$dir/trace.json" | grep -o '"args":{"id":[0-9]*' | sort -u | wc -l)
want_flows=$(grep -c '"ph":"f"' "$dir/trace.json")

awk -v trace="$dir/trace.json" '
    /<script id="trace" type="application\/json"><\/script>/ {
        printf "<script id=\"trace\" type=\"application/json\">"
        while ((getline line < trace) > 0) print line
        print "</script>"
        next
    }
    { print }' "$viewer" >"$dir/view.html"

flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$dir/profile"
    --virtual-time-budget=5000 --window-size=1400,420)
timeout 60 "$chromium" "${flags[@]}" --dump-dom "file://$dir/view.html" >"$dir/dom.html" 2>"$dir/chromium.log" || {
    echo "FAIL: chromium failed" >&2
    tail -20 "$dir/chromium.log" >&2
    exit 1
}
summary=$(grep -o '<span id="summary"[^>]*>[^<]*' "$dir/dom.html" || true)
echo "viewer: $summary"
field() { grep -o "data-$1=\"[0-9]*\"" <<<"$summary" | grep -o '[0-9]*'; }
fail=0
check() {
    local name=$1 got=$2 want=$3
    if [ "$got" != "$want" ]; then
        echo "FAIL: $name: viewer drew $got, trace has $want" >&2
        fail=1
    fi
}
check lanes "$(field lanes)" "$want_lanes"
check slices "$(field slices)" "$want_slices"
check goroutines "$(field goroutines)" "$want_gs"
check flows "$(field flows)" "$want_flows"
# The trace itself: 1111 goroutines of skynet and main, on 2+ workers... at
# least one worker, and every goroutine with a slice.
if [ "$want_gs" -lt 1112 ] || [ "$want_lanes" -lt 1 ]; then
    echo "FAIL: trace has $want_gs goroutines on $want_lanes lanes (want >= 1112)" >&2
    fail=1
fi
if [ -n "$shot" ]; then
    timeout 60 "$chromium" "${flags[@]}" --screenshot="$shot" "file://$dir/view.html" 2>>"$dir/chromium.log"
fi
[ "$fail" = 0 ] && echo "viewer OK: $want_lanes lanes, $want_slices slices, $want_gs goroutines, $want_flows flows"
exit "$fail"
