#!/bin/sh
# The whole test suite, from a fresh Debian machine: installs the build
# dependencies, then runs the tests in a normal build and under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
need=""
for pkg in gcc make libc6-dev libjansson-dev npm git; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $need
fi
# llama.cpp's prebuilt libraries and headers (npm), for the interop tests
sh tools/fetch_llama.sh
make -j"$(nproc)"
make -j"$(nproc)" test
make -j"$(nproc)" asan
