#!/usr/bin/env bash
# tests/compile_fail/check.sh COMPILER INCLUDE_DIR SOURCE EXPECTED_TEXT [FLAGS...]
# Passes when SOURCE fails to compile and the diagnostic contains EXPECTED_TEXT.
# FLAGS come after -std=c++20, so a -std=... among them overrides it.
set -u
compiler=$1 include=$2 source=$3 expected=$4
shift 4
if out=$("$compiler" -std=c++20 -fsyntax-only -I "$include" "$@" "$source" 2>&1); then
    echo "compiled, but must not: $source"
    exit 1
fi
if ! grep -qF -- "$expected" <<<"$out"; then
    echo "failed to compile, but without the expected message: $expected"
    echo "$out" | head -30
    exit 1
fi
echo "rejected as expected: $expected"
