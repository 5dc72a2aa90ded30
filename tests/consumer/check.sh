#!/usr/bin/env bash
# Builds and runs tests/consumer against goro one way, the way users do; each
# run must print the project's version (from the installed or generated
# goro/version.hpp) and the count of goroutines that ran.
#
# Usage: check.sh <way> <goro build dir> <goro source dir> <scratch dir> <c++ compiler> <version>
#   install        cmake --install the build into <scratch>/prefix (the
#                  fixture of find_package and pkg-config)
#   find_package   configure against <scratch>/prefix (CMAKE_PREFIX_PATH)
#   pkg-config     compile by hand with `pkg-config --cflags --libs goro`
#   add_subdirectory   goro's source tree inside the consumer's build
#   fetchcontent   FetchContent from a file:// URL of the source tree's git
#                  repository, at its HEAD commit (no network)
#   deb            build the Debian packages (dpkg-buildpackage), unpack
#                  them into <scratch>/root, and build with find_package and
#                  pkg-config against that root
# Subprojects are configured without a build type (goro must not set one)
# and as a unity build (CMAKE_UNITY_BUILD, which users may set too): goro
# compiles in about a quarter of the time.
set -euo pipefail
way=$1 build=$2 src=$3 scratch=$4 cxx=$5 version=$6
dir=$scratch/$way
rm -rf "$dir"
mkdir -p "$dir"

expect_version() {  # runs a consumer binary, checks its line
    local out
    out=$("$@")
    echo "$out"
    grep -qF "consumer: goro $version, 100 goroutines ran" <<<"$out" ||
        { echo "expected goro $version in the output of $*"; exit 1; }
}

configure_and_run() {  # extra cmake arguments...
    cmake -S "$src/tests/consumer" -B "$dir/build" -DCMAKE_CXX_COMPILER="$cxx" "$@" >"$dir/configure.log" ||
        { cat "$dir/configure.log"; exit 1; }
    grep -E "found goro" "$dir/configure.log" || true
    cmake --build "$dir/build" -j2 --target consumer >"$dir/build.log" 2>&1 ||
        { tail -50 "$dir/build.log"; exit 1; }
    expect_version "$dir/build/consumer"
}

pkg_config_build() {  # <dir holding goro.pc> [extra link flags...]
    local pcdir=$1
    shift
    export PKG_CONFIG_PATH=$pcdir
    [[ $(pkg-config --modversion goro) == "$version" ]] ||
        { echo "pkg-config --modversion goro: $(pkg-config --modversion goro), expected $version"; exit 1; }
    local flags
    flags=$(pkg-config --cflags --libs goro)
    echo "pkg-config --cflags --libs goro: $flags"
    # shellcheck disable=SC2086  # the flags are words
    "$cxx" -std=c++20 -o "$dir/consumer-pc" "$src/tests/consumer/main.cpp" $flags "$@"
    expect_version "$dir/consumer-pc"
}

case $way in
install)
    rm -rf "$scratch/prefix"
    cmake --install "$build" --prefix "$scratch/prefix" >"$dir/install.log"
    find "$scratch/prefix" -name goroConfig.cmake | grep -q . || { echo "no goroConfig.cmake installed"; exit 1; }
    echo "installed into $scratch/prefix"
    ;;
find_package)
    configure_and_run -DCMAKE_PREFIX_PATH="$scratch/prefix" -DGORO_EXPECT_VERSION="$version"
    ;;
pkg-config)
    pc=$(find "$scratch/prefix" -name goro.pc -path '*/pkgconfig/*')
    [[ -n "$pc" ]] || { echo "goro.pc was not installed"; exit 1; }
    pkg_config_build "$(dirname "$pc")"
    ;;
add_subdirectory)
    configure_and_run -DGORO_SOURCE_DIR="$src" -DCMAKE_UNITY_BUILD=ON
    ;;
fetchcontent)
    head=$(git -C "$src" rev-parse HEAD 2>/dev/null) ||
        { echo "$src is not a git clone: nothing to fetch from (skipped)"; exit 77; }
    if [[ -n $(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
        echo "note: uncommitted changes in $src are not in the fetched commit $head"
    fi
    configure_and_run -DGORO_FETCH_URL="file://$src" -DGORO_FETCH_TAG="$head" \
        -DFETCHCONTENT_QUIET=ON -DCMAKE_UNITY_BUILD=ON
    ;;
deb)
    # The source package is built from a copy (dpkg-buildpackage writes the
    # .debs next to the source directory, and debian/ build files into it).
    debver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
    [[ ${debver%%-*} == "$version" ]] ||
        { echo "debian/changelog is at $debver, the project at $version: add an entry"; exit 1; }
    mkdir -p "$dir/src"
    tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$dir/src" -xf -
    # What is tested is the packaging, not the optimizer: no optimization,
    # no debug symbols (DEB_CXXFLAGS_SET), no dbgsym package (nostrip), a
    # unity build (debian/rules; 46 s of the 61 were compiling, file by file).
    (cd "$dir/src" && DEB_BUILD_OPTIONS="nocheck parallel=2 noopt nostrip goro-unity" DEB_CXXFLAGS_SET="-O0" \
        dpkg-buildpackage -us -uc -b >"$dir/dpkg-buildpackage.log" 2>&1) ||
        { tail -60 "$dir/dpkg-buildpackage.log"; exit 1; }
    ls "$dir"/*.deb
    for deb in "$dir"/*.deb; do
        dpkg-deb -x "$deb" "$dir/root"
        echo "== $(basename "$deb")"
        dpkg-deb -c "$deb" | awk '{print "   " $6 ($7 ? " " $7 " " $8 : "")}'
    done
    so=$(find "$dir/root" -name 'libgoro.so.*.*' | head -1)
    [[ -n "$so" ]] || { echo "libgoro0 has no libgoro.so.<version>"; exit 1; }
    soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
    [[ $soname == "libgoro.so.${version%%.*}" ]] || { echo "SONAME $soname"; exit 1; }
    libdir=$(dirname "$so")
    # The unpacked root is not where the packages' paths point: find it by
    # CMAKE_PREFIX_PATH, run against it with LD_LIBRARY_PATH.
    export LD_LIBRARY_PATH=$libdir
    configure_and_run -DCMAKE_PREFIX_PATH="$dir/root/usr" -DGORO_EXPECT_VERSION="$version"
    ldd "$dir/build/consumer" | grep -F "libgoro.so.${version%%.*} => $libdir/" ||
        { echo "the consumer does not load the packaged libgoro"; ldd "$dir/build/consumer"; exit 1; }
    pc=$(find "$dir/root" -name goro.pc)
    # goro.pc is relocatable (paths relative to the .pc file).
    pkg_config_build "$(dirname "$pc")"
    ;;
*)
    echo "unknown way: $way"
    exit 2
    ;;
esac
