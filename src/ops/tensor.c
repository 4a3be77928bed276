#include "ops/tensor.h"

/* Indexed by g4_dtype; the names match the safetensors dtype strings so
 * messages read the same whichever file format a tensor came from. */
static const struct {
    const char *name;
    size_t size;
} dtype_info[G4_DTYPE_COUNT] = {
    [G4_DTYPE_F32] = {"F32", 4},
    [G4_DTYPE_F16] = {"F16", 2},
    [G4_DTYPE_BF16] = {"BF16", 2},
    [G4_DTYPE_F64] = {"F64", 8},
    [G4_DTYPE_I64] = {"I64", 8},
    [G4_DTYPE_I32] = {"I32", 4},
    [G4_DTYPE_I16] = {"I16", 2},
    [G4_DTYPE_I8] = {"I8", 1},
    [G4_DTYPE_U8] = {"U8", 1},
    [G4_DTYPE_BOOL] = {"BOOL", 1},
    [G4_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [G4_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *g4_dtype_name(g4_dtype t) {
    if ((unsigned)t >= G4_DTYPE_COUNT || !dtype_info[t].name)
        return "unknown";
    return dtype_info[t].name;
}

size_t g4_dtype_size(g4_dtype t) {
    if ((unsigned)t >= G4_DTYPE_COUNT)
        return 0;
    return dtype_info[t].size;
}
