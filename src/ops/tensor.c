#include "ops/tensor.h"

/* Indexed by g4_dtype; the names match the safetensors dtype strings (and
 * llama.cpp's spelling of the quantised types) so messages read the same
 * whichever file format a tensor came from. */
static const struct {
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} dtype_info[G4_DTYPE_COUNT] = {
    [G4_DTYPE_F32] = {"F32", 1, 4},
    [G4_DTYPE_F16] = {"F16", 1, 2},
    [G4_DTYPE_BF16] = {"BF16", 1, 2},
    [G4_DTYPE_F64] = {"F64", 1, 8},
    [G4_DTYPE_I64] = {"I64", 1, 8},
    [G4_DTYPE_I32] = {"I32", 1, 4},
    [G4_DTYPE_I16] = {"I16", 1, 2},
    [G4_DTYPE_I8] = {"I8", 1, 1},
    [G4_DTYPE_U8] = {"U8", 1, 1},
    [G4_DTYPE_BOOL] = {"BOOL", 1, 1},
    [G4_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 1},
    [G4_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 1},
    /* Block sizes as in ggml's ggml-common.h (pinned by static asserts on
     * the block structs in ops/quant.h). */
    [G4_DTYPE_Q8_0] = {"Q8_0", 32, 34},
    [G4_DTYPE_Q4_0] = {"Q4_0", 32, 18},
    [G4_DTYPE_Q4_1] = {"Q4_1", 32, 20},
    [G4_DTYPE_Q5_0] = {"Q5_0", 32, 22},
    [G4_DTYPE_Q5_1] = {"Q5_1", 32, 24},
    [G4_DTYPE_Q4_K] = {"Q4_K", 256, 144},
    [G4_DTYPE_Q5_K] = {"Q5_K", 256, 176},
    [G4_DTYPE_Q6_K] = {"Q6_K", 256, 210},
};

const char *g4_dtype_name(g4_dtype t) {
    if ((unsigned)t >= G4_DTYPE_COUNT || !dtype_info[t].name)
        return "unknown";
    return dtype_info[t].name;
}

size_t g4_dtype_size(g4_dtype t) {
    if ((unsigned)t >= G4_DTYPE_COUNT || dtype_info[t].block_elems != 1)
        return 0;
    return dtype_info[t].block_bytes;
}

int64_t g4_dtype_block_elems(g4_dtype t) {
    return (unsigned)t < G4_DTYPE_COUNT ? dtype_info[t].block_elems : 0;
}

size_t g4_dtype_block_bytes(g4_dtype t) {
    return (unsigned)t < G4_DTYPE_COUNT ? dtype_info[t].block_bytes : 0;
}

int g4_dtype_is_quantized(g4_dtype t) { return g4_dtype_block_elems(t) > 1; }

int g4_dtype_nbytes(g4_dtype t, int64_t row_elems, int64_t rows, uint64_t *out) {
    int64_t be = g4_dtype_block_elems(t);
    if (be <= 0 || row_elems < 0 || rows < 0 || row_elems % be != 0)
        return -1;
    uint64_t row_bytes;
    if (__builtin_mul_overflow((uint64_t)(row_elems / be), (uint64_t)dtype_info[t].block_bytes,
                               &row_bytes) ||
        __builtin_mul_overflow(row_bytes, (uint64_t)rows, out))
        return -1;
    return 0;
}
