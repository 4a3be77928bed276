/* The repacked decode kernels' rate from DRAM: 24 matrices of
 * E4B's feed-forward shape (10240 × 2560, 350 MB at Q4_0: well past the
 * caches), each multiplied by one token in turn, best of 8 passes, in huge
 * pages, on one thread or (second argument) through g4_matmul on a thread
 * pool as decode runs them. Compare with `membw N` in the same minute
 * (docs/benchmarks.md).
 * Build: make && cc -O2 -D_GNU_SOURCE -Isrc -Iinclude -march=x86-64-v3 \
 *   bench/qdot_stream.c build/libgemma4.a -ljansson -lm -pthread -o qdot_stream
 * Run: ./qdot_stream q4_0|q8_0|q4_k|q6_k [THREADS] */
#include "ops/matmul.h"
#include "ops/qdot_x16.h"
#include "ops/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { MATRICES = 24, ROWS = 10240, COLS = 2560, PASSES = 8 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *names[] = {"q4_0", "q8_0", "q4_k", "q6_k"};
    const g4_dtype types[] = {G4_DTYPE_Q4_0, G4_DTYPE_Q8_0, G4_DTYPE_Q4_K, G4_DTYPE_Q6_K};
    int k = 0;
    while (k < 4 && (argc < 2 || strcmp(argv[1], names[k]) != 0)) k++;
    if (k == 4) {
        fprintf(stderr, "usage: qdot_stream q4_0|q8_0|q4_k|q6_k [THREADS]\n");
        return 2;
    }
    g4_dtype t = types[k];
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (!g4_x16_eligible(t, ROWS, COLS)) {
        fprintf(stderr, "qdot_stream: this CPU has no 512-bit VNNI kernels\n");
        return 1;
    }
    size_t row_bytes = g4_dtype_row_bytes(t, COLS), matrix_bytes = row_bytes * ROWS;
    unsigned char *plain = malloc(matrix_bytes), *packed = aligned_alloc(1 << 21, matrix_bytes * MATRICES);
    float *w = malloc(sizeof(float) * COLS), *x = malloc(sizeof(float) * COLS), *y = malloc(sizeof(float) * ROWS);
    g4_block_q8a *xq = malloc(sizeof *xq * (COLS / 32));
    if (!plain || !packed || !w || !x || !y || !xq) {
        fprintf(stderr, "qdot_stream: out of memory\n");
        return 1;
    }
    madvise(packed, matrix_bytes * MATRICES, MADV_HUGEPAGE);
    for (int r = 0; r < ROWS; r++) {
        for (int i = 0; i < COLS; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
        g4_quantize_row(t, w, plain + (size_t)r * row_bytes, COLS);
    }
    for (int m = 0; m < MATRICES; m++) g4_x16_repack(t, plain, packed + m * matrix_bytes, ROWS, COLS);
    for (int i = 0; i < COLS; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    g4_quantize_activations(x, xq, COLS);
    g4_threadpool *pool = threads > 1 ? g4_threadpool_new(threads) : NULL;
    double best = 1e30;
    for (int pass = 0; pass < PASSES; pass++) {
        double t0 = now();
        for (int m = 0; m < MATRICES; m++)
            if (pool) {
                g4_tensor W = {"w", t, 2, {ROWS, COLS}, (int64_t)ROWS * COLS, packed + m * matrix_bytes, matrix_bytes, 1};
                g4_matmul(pool, &W, x, 1, y);
            } else {
                g4_x16_matmul(t, packed + m * matrix_bytes, ROWS, COLS, 0, ROWS / 16, xq, 1, y, ROWS);
            }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%s: %.1f GB/s from DRAM, %d thread(s) (y[0] = %g)\n", names[k], (double)matrix_bytes * MATRICES / best / 1e9,
           threads, y[0]);
    g4_threadpool_free(pool);
    return 0;
}
