#!/usr/bin/env bash
# tests/compile_fail/every_header_cxx17.sh COMPILER INCLUDE_DIR GENERATED_INCLUDE_DIR
# Each public goro header, included alone by a C++17 translation unit, must
# fail with "goro needs C++20" (goro/version.hpp excepted: plain macros).
set -u
compiler=$1 include=$2 generated=$3
status=0 count=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS= read -r header; do
    rel=${header#"$include"/}
    printf '#include <%s>\nint main() {}\n' "$rel" >"$tmp/tu.cpp"
    # -Wfatal-errors: the first error must be the one that names the cause
    # (and the compiler stops there: a second a header instead of one).
    if out=$("$compiler" -std=c++17 -fsyntax-only -Wfatal-errors -I "$include" -I "$generated" \
        "$tmp/tu.cpp" 2>&1); then
        echo "compiled as C++17: $rel"
        status=1
    elif ! grep -qF "goro needs C++20" <<<"$out"; then
        echo "as C++17, $rel failed without \"goro needs C++20\":"
        echo "$out" | head -10
        status=1
    fi
    count=$((count + 1))
done < <(find "$include/goro" -name '*.hpp' -not -path '*/detail/*' -not -name version.hpp \
             -not -path '*/testing/gtest.hpp' | sort)
# gtest.hpp needs GoogleTest's headers; its C++17 check is the same include line.
grep -q 'require_cxx20.hpp' "$include/goro/testing/gtest.hpp" ||
    { echo "goro/testing/gtest.hpp does not include the C++20 check"; status=1; }
[[ $count -ge 15 ]] || { echo "only $count headers found under $include/goro"; status=1; }
[[ $status -eq 0 ]] && echo "all $count public headers refuse C++17 with \"goro needs C++20\""
exit $status
