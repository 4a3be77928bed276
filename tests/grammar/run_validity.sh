#!/bin/sh
# Validity of constrained decoding on a model with random weights (so the
# constraint is the only source of structure): N answers per schema in
# schemas/ (plus --json and tool calls with each tool_choice), each checked
# by ajv (validate.mjs). Prints one line per case and the mask cost.
#
#   sh tests/grammar/run_validity.sh MODEL N [TOKENS]
#
# Needs node and tests/grammar/node_modules (npm ci --prefix tests/grammar).
# GEMMA4 (default build/gemma4) is the binary; OUT (default a temporary
# directory) keeps the answers.
set -eu
cd "$(dirname "$0")"
model=$1 n=$2 tokens=${3:-128}
case $model in /*) ;; *) model=$OLDPWD/$model ;; esac
gemma4=${GEMMA4:-build/gemma4}
case $gemma4 in /*) ;; *) gemma4=$OLDPWD/$gemma4 ;; esac
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
prompt="Answer with JSON."
failed=0
run() { # name, validate args..., then -- and the run options
    name=$1; shift
    vargs=""
    while [ "$1" != "--" ]; do vargs="$vargs $1"; shift; done
    shift
    "$gemma4" run -m "$model" -p "$prompt" -n "$tokens" -t 1 --seed 1 --samples "$n" --json-out "$@" > "$out/$name.jsonl"
    printf '%-24s ' "$name"
    # shellcheck disable=SC2086
    node validate.mjs $vargs "$out/$name.jsonl" || failed=1
}
for s in schemas/*.json; do
    name=$(basename "$s" .json)
    run "$name" --schema "$s" -- --json-schema "$s"
done
echo '{}' > "$out/any.json"
run json --schema "$out/any.json" -- --json
for choice in auto required get_weather set_alarm; do
    run "tools_$choice" --tools tools/tools.json --choice "$choice" -- --tools tools/tools.json --tool-choice "$choice"
done
[ "$failed" = 0 ] && echo "all valid" || { echo "INVALID ANSWERS (see $out)"; exit 1; }
