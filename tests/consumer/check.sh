#!/usr/bin/env bash
# Installs goro from the build tree into a scratch prefix, then builds and
# runs tests/consumer against it three ways: find_package, add_subdirectory,
# and by hand with `pkg-config --cflags --libs goro`. Each run must print the
# project's version (from the installed or generated goro/version.hpp).
# Usage: check.sh <goro build dir> <goro source dir> <scratch dir> <c++ compiler> <version>
set -euo pipefail
build=$1 src=$2 scratch=$3 cxx=$4 version=$5
rm -rf "$scratch"

expect_version() {  # runs a consumer binary, checks its line
    local out
    out=$("$1")
    echo "$out"
    grep -qF "consumer: goro $version, 100 goroutines ran" <<<"$out" ||
        { echo "expected goro $version in the output of $1"; exit 1; }
}

cmake --install "$build" --prefix "$scratch/prefix" >/dev/null

echo "== find_package"
cmake -S "$src/tests/consumer" -B "$scratch/found" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$scratch/found" -j2 >/dev/null
expect_version "$scratch/found/consumer"

echo "== add_subdirectory"
cmake -S "$src/tests/consumer" -B "$scratch/sub" -DGORO_SOURCE_DIR="$src" \
    -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$scratch/sub" -j2 --target consumer >/dev/null
expect_version "$scratch/sub/consumer"

echo "== pkg-config"
pc=$(find "$scratch/prefix" -name goro.pc -path '*/pkgconfig/*')
[[ -n "$pc" ]] || { echo "goro.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
[[ $(pkg-config --modversion goro) == "$version" ]] ||
    { echo "pkg-config --modversion goro: $(pkg-config --modversion goro), expected $version"; exit 1; }
flags=$(pkg-config --cflags --libs goro)
echo "pkg-config --cflags --libs goro: $flags"
mkdir -p "$scratch/pkgconfig"
# shellcheck disable=SC2086  # the flags are words
"$cxx" -std=c++20 -o "$scratch/pkgconfig/consumer" "$src/tests/consumer/main.cpp" $flags
expect_version "$scratch/pkgconfig/consumer"
