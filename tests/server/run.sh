#!/bin/sh
# The server tests (tools/test.sh runs this): the OpenAI SDK suite and a short
# robustness run against `gemma4 serve` on a tiny random model with the real
# vocabulary and Gemma 4's control tokens, made at test time in $BUILD/serve/.
#
#   sh tests/server/run.sh [--requests N]     (BUILD=build by default)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
requests=600
[ "${1:-}" = "--requests" ] && requests=$2
(cd tests/server && npm ci --silent --no-audit --no-fund >/dev/null)
tokenizer=$(sh tools/fetch_tokenizer.sh)
mkdir -p "$BUILD/serve"
if [ ! -s "$BUILD/serve/tiny.gguf" ] || [ "$tokenizer" -nt "$BUILD/serve/tiny.gguf" ]; then
    node tests/server/gemma4_tokenizer.mjs "$tokenizer" "$BUILD/serve/tokenizer.json"
    "$BUILD/gemma4" synth --arch tiny --type f32 --tokenizer "$BUILD/serve/tokenizer.json" -o "$BUILD/serve/tiny.gguf" >/dev/null
fi
export GEMMA4="$BUILD/gemma4" SERVE_MODEL="$BUILD/serve/tiny.gguf"
echo "== server: OpenAI SDK suite"
node tests/server/sdk_test.mjs
echo "== server: robustness run ($requests requests, 32 clients)"
node tests/server/load.mjs --requests "$requests" --clients 32
