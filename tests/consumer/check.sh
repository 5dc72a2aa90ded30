#!/usr/bin/env bash
# Installs goro from the build tree into a scratch prefix, then builds and
# runs tests/consumer against it with find_package, and again with
# add_subdirectory. Usage: check.sh <goro build dir> <goro source dir> <scratch dir>
set -euo pipefail
build=$1 src=$2 scratch=$3
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$scratch/found" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/found" -j2 >/dev/null
"$scratch/found/consumer"
cmake -S "$src/tests/consumer" -B "$scratch/sub" -DGORO_SOURCE_DIR="$src" >/dev/null
cmake --build "$scratch/sub" -j2 --target consumer >/dev/null
"$scratch/sub/consumer"
