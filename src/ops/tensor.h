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
} g4_tensor;

const char *g4_dtype_name(g4_dtype t);
/* Bytes per element; 0 for types without a fixed element size. */
size_t g4_dtype_size(g4_dtype t);



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
