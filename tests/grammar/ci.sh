#!/bin/sh
# The structured-output check of the test suite (docs/grammar.md): a tiny
# model with random weights and the real vocabulary (Gemma 4's special
# tokens patched into the npm tokenizer), N constrained answers per schema,
# per --json and per tool_choice, each validated by ajv (npm, pinned in
# package-lock.json). Needs $BUILD/gemma4 (BUILD default build) and
# build/tokenizer/tokenizer.json.
#
#   sh tests/grammar/ci.sh [N]     (default 8; the reported run used 200)
set -eu
cd "$(dirname "$0")/../.."
n=${1:-8}
build=${BUILD:-build}
dir=$build/grammar
mkdir -p "$dir"
npm ci --silent --no-audit --no-fund --prefix tests/grammar >/dev/null
[ -s "$dir/tokenizer.json" ] || node tests/server/gemma4_tokenizer.mjs build/tokenizer/tokenizer.json "$dir/tokenizer.json"
[ -s "$dir/tiny-q4_0.gguf" ] || "$build/gemma4" synth --arch tiny --type q4_0 --tokenizer "$dir/tokenizer.json" \
    -o "$dir/tiny-q4_0.gguf" >/dev/null
GEMMA4="$build/gemma4" OUT="$dir/answers" sh tests/grammar/run_validity.sh "$dir/tiny-q4_0.gguf" "$n"
