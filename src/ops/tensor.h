/* A typed view of a weight tensor: shape, storage type and a pointer into
 * memory the tensor does not own (usually a memory-mapped file). Ops dispatch
 * on the storage type; model code never touches raw bytes. */
#ifndef G4_OPS_TENSOR_H
#define G4_OPS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum g4_dtype {
    G4_DTYPE_F32,
    G4_DTYPE_F16,
    G4_DTYPE_BF16,
    /* Stored in files we read but not usable as weights yet. */
    G4_DTYPE_F64,
    G4_DTYPE_I64,
    G4_DTYPE_I32,
    G4_DTYPE_I16,
    G4_DTYPE_I8,
    G4_DTYPE_U8,
    G4_DTYPE_BOOL,
    G4_DTYPE_F8_E4M3,
    G4_DTYPE_F8_E5M2,
    /* GGML block-quantised types (GGUF files): a row is a sequence of
     * fixed-size blocks, each holding its own scale(s) and the packed codes of
     * block_elems consecutive elements. Layouts: ops/quant.h. */
    G4_DTYPE_Q8_0, /* 32 elements in 34 bytes: f16 scale + 32 int8 */
    G4_DTYPE_Q4_0, /* 32 elements in 18 bytes: f16 scale + 32 4-bit codes */
    G4_DTYPE_Q4_1, /* 32 elements in 20 bytes: f16 scale and min + 4-bit codes */
    G4_DTYPE_Q5_0, /* 32 elements in 22 bytes: f16 scale + 5-bit codes */
    G4_DTYPE_Q5_1, /* 32 elements in 24 bytes: f16 scale and min + 5-bit codes */
    G4_DTYPE_Q4_K, /* 256 elements in 144 bytes: 8 sub-blocks with 6-bit scales/mins */
    G4_DTYPE_Q5_K, /* 256 elements in 176 bytes: as Q4_K with a fifth bit */
    G4_DTYPE_Q6_K, /* 256 elements in 210 bytes: 16 sub-blocks with 8-bit scales */
    G4_DTYPE_COUNT
} g4_dtype;

#define G4_MAX_DIMS 8

typedef struct g4_tensor {
    const char *name;          /* as stored in the file */
    g4_dtype dtype;
    int ndim;
    int64_t shape[G4_MAX_DIMS]; /* outermost first (row-major, PyTorch order) */
    int64_t numel;
    const void *data;
    size_t nbytes;
    int repacked;              /* Q4_0/Q8_0/Q4_K/Q6_K rows regrouped by 16 for the integer kernels (ops/qdot_x16.h) */
} g4_tensor;

const char *g4_dtype_name(g4_dtype t);
/* Bytes per element; 0 for types without a fixed element size (the block
 * types: use the block helpers below). */
size_t g4_dtype_size(g4_dtype t);

/* Every type is stored as blocks of block_elems elements in block_bytes
 * bytes; plain types have blocks of one element. Both are 0 for values
 * outside the enum. A tensor's innermost dimension (a row) must be a whole
 * number of blocks. */
int64_t g4_dtype_block_elems(g4_dtype t);
size_t g4_dtype_block_bytes(g4_dtype t);
/* True for the GGML block-quantised types. */
int g4_dtype_is_quantized(g4_dtype t);

/* Bytes of a row of n elements; n must be a multiple of the block size (the
 * loaders check that), so this is exact. For offsets in hot loops. */
static inline size_t g4_dtype_row_bytes(g4_dtype t, int64_t n) {
    int64_t be = g4_dtype_block_elems(t);
    return be > 0 ? (size_t)(n / be) * g4_dtype_block_bytes(t) : 0;
}

/* Checked byte size of rows x row_elems elements, for sizes read from files:
 * -1 if either count is negative, row_elems is not a whole number of blocks,
 * or the size overflows 64 bits. */
int g4_dtype_nbytes(g4_dtype t, int64_t row_elems, int64_t rows, uint64_t *out);



/* The sub-tensor t[i] (first dimension dropped), e.g. one expert's matrix out
 * of a stacked [E, out, in] tensor. The caller checks 0 <= i < shape[0]. */
static inline g4_tensor g4_tensor_index0(const g4_tensor *t, int64_t i) {
    g4_tensor v = *t;
    v.ndim = t->ndim - 1;
    for (int d = 0; d < v.ndim; d++) v.shape[d] = t->shape[d + 1];
    v.numel = t->shape[0] ? t->numel / t->shape[0] : 0;
    v.nbytes = t->shape[0] ? t->nbytes / (size_t)t->shape[0] : 0;
    v.data = (const char *)t->data + v.nbytes * (size_t)i;
    return v;
}
#endif
