#!/usr/bin/env bash
# Installs the Debian packages goro's build, tests and benchmarks need, if
# any is missing. Sourced by tests/run and bench/run; needs root (or sudo).
goro_install_deps() {
    # doxygen: the `docs` target and its test; dpkg-dev, debhelper, fakeroot:
    # the Debian packages' test (tests/consumer/check.sh deb); git: the
    # FetchContent test; python3: the docs' code blocks (tests/docs).
    local pkgs=(cmake make g++ clang libclang-rt-14-dev libboost-context-dev pkg-config
        libgtest-dev libbenchmark-dev chromium doxygen dpkg-dev debhelper fakeroot git python3 "$@")
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "goro: installing ${missing[*]}"
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
