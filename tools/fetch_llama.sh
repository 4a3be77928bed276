#!/bin/sh
# Fetches llama.cpp's prebuilt libraries (the npm package
# @node-llama-cpp/linux-x64@3.22.1: libggml-base.so, libllama, CPU backends)
# into build/llama/package/. The interop tests (tests/unit/test_quant.c,
# tests/unit/test_gguf.c) dlopen libggml-base.so from there, or from
# $G4_LLAMA_LIB_DIR. Idempotent: does nothing if the libraries are present.
set -eu
cd "$(dirname "$0")/.."
PKG="@node-llama-cpp/linux-x64@3.22.1"
TGZ="node-llama-cpp-linux-x64-3.22.1.tgz"
DEST="build/llama"
LIB="$DEST/package/bins/linux-x64/libggml-base.so"
command -v npm >/dev/null 2>&1 || { echo "fetch_llama.sh: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DEST"
if [ ! -f "$LIB" ]; then
tmp="$DEST/.fetch.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
tar xzf "$tmp/$TGZ" -C "$tmp"
rm -rf "$DEST/package"
mv "$tmp/package" "$DEST/package"
[ -f "$LIB" ] || { echo "fetch_llama.sh: $LIB missing after extraction" >&2; exit 1; }
rm -rf "$tmp"
echo "fetch_llama.sh: llama.cpp libraries in $DEST/package/bins/linux-x64"
fi

# llama.cpp's headers (llama.h, ggml*.h) for tests/interop/llama_logits.c, from
# the git bundle the node-llama-cpp package ships (same release as the libs).
HDR="$DEST/include/llama.h"
if [ ! -f "$HDR" ]; then
    tmp2="$DEST/.fetch-src.$$"
    rm -rf "$tmp2"
    mkdir -p "$tmp2"
    (cd "$tmp2" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm pack --silent node-llama-cpp@3.22.1 >/dev/null)
    tar xzf "$tmp2/node-llama-cpp-3.22.1.tgz" -C "$tmp2" package/llama/gitRelease.bundle
    git clone -q "$tmp2/package/llama/gitRelease.bundle" "$tmp2/src" 2>/dev/null
    mkdir -p "$DEST/include"
    cp "$tmp2/src/include/llama.h" "$tmp2"/src/ggml/include/*.h "$DEST/include/"
    rm -rf "$tmp2"
    [ -f "$HDR" ] || { echo "fetch_llama.sh: llama.h missing after extraction" >&2; exit 1; }
    echo "fetch_llama.sh: llama.cpp headers in $DEST/include"
fi
