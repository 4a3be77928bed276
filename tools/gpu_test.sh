#!/bin/sh
# The GPU test suite, on a machine with a CUDA GPU, after `make cuda` (or with
# the build-cuda folder carried over): the reference fixtures through the
# public API with the GPU selected (tests/unit/test_fixtures.c, unchanged
# tolerances), the same for the float32 fixtures with every product sent
# through cuBLAS, tests/cuda/test_gpu.c (the bf16 tensor-core path against
# transformers' bf16 run, synthetic models of every weight type, K-quant
# and Q4_1/Q5_0/Q5_1 GGUF files against the CPU on the same weights),
# tests/cuda/test_attention.cu (tensor-core attention pinned to the float32
# kernel), tests/cuda/test_gemv.cu (the decode GEMV's row splits),
# tests/cuda/test_gemm.cu (the prefill products, quantised weights too), and greedy
# generation CPU vs GPU through the CLI. Prints a summary; exits non-zero on
# any failure.
#   sh tools/gpu_test.sh [BUILD_DIR] [LOG_DIR]
B=${1:-build-cuda}
LOG=${2:-$B/gpu-test}
mkdir -p "$LOG"
# libraries a bare GPU machine may lack: copies in $B/lib, cuBLAS from pip's nvidia wheels
export LD_LIBRARY_PATH="$B/lib:${LD_LIBRARY_PATH:-}"
if ! ldconfig -p 2>/dev/null | grep -q libcublas.so.13 && [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
    d=$(dirname "$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -n 1)")
    [ -n "$d" ] && export LD_LIBRARY_PATH="$d:$LD_LIBRARY_PATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'

pass=0 fail=0 summary=""
step() { # name, command...
    name=$1; shift
    if "$@" >"$LOG/$name.log" 2>&1; then pass=$((pass + 1)); r=PASS; else fail=$((fail + 1)); r=FAIL; fi
    summary="$summary
$r  $name"
    echo "== $r $name"; cat "$LOG/$name.log"
}

step fixtures-gpu env GEMMA4_TEST_DEVICE=gpu "$B/tests/test_fixtures" tests/fixtures

f32=$(mktemp -d)
for f in dense e-like moe; do ln -s "$(pwd)/tests/fixtures/$f" "$f32/$f"; done
step fixtures-f32-cublas env GEMMA4_TEST_DEVICE=gpu G4_GPU_GEMM_MIN=1 "$B/tests/test_fixtures" "$f32"
rm -rf "$f32"

step gpu-paths "$B/tests/cuda/test_gpu" tests/fixtures
step tensor-core-attention "$B/tests/cuda/test_attention"
step decode-gemv "$B/tests/cuda/test_gemv"
step prefill-gemm "$B/tests/cuda/test_gemm"

same_greedy() {
    for f in dense e-like moe dense-bf16 e-like-bf16 moe-bf16; do
        cpu=$("$B/gemma4" generate -m "tests/fixtures/$f" --ids 2,17,301,44 -n 24 --temp 0 --cpu) || return 1
        gpu=$("$B/gemma4" generate -m "tests/fixtures/$f" --ids 2,17,301,44 -n 24 --temp 0 --gpu) || return 1
        echo "$f cpu: $cpu"; echo "$f gpu: $gpu"
        [ "$cpu" = "$gpu" ] || return 1
    done
}
step greedy-cpu-vs-gpu same_greedy

# GGUF Q4_0/Q8_0 (and K-quant, once the CPU repacks them) weights the CPU
# loader repacked (model/repack.c) reach the GPU through g4_x16_unrepack: the
# same logits as a load that kept GGML's layout. (K-quant decoding itself is
# pinned to the CPU's dequantisers by gpu-paths.)
same_quantised_upload() {
    for t in q4_0 q8_0 q4_k_m q6_k; do
        "$B/gemma4" synth --arch tiny --type $t -o "$LOG/tiny-$t.gguf" >/dev/null || return 1
        a=$("$B/gemma4" generate -m "$LOG/tiny-$t.gguf" --ids 2,17,301,44 -n 24 --temp 0 --gpu) || return 1
        b=$(G4_REPACK=0 "$B/gemma4" generate -m "$LOG/tiny-$t.gguf" --ids 2,17,301,44 -n 24 --temp 0 --gpu) || return 1
        rm -f "$LOG/tiny-$t.gguf"
        echo "$t repacked: $a"; echo "$t as file: $b"
        [ "$a" = "$b" ] || return 1
    done
}
step quantised-upload same_quantised_upload

echo "
== summary: $pass passed, $fail failed$summary"
[ "$fail" -eq 0 ]
