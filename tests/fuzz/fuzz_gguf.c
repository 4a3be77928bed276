/* libFuzzer target for gguf_open: the input bytes are a whole .gguf file,
 * written to a memfd and opened through /proc/self/fd (gguf_open maps a
 * path). Accepted files are checked against the API's promises, and every
 * quantised tensor is decoded, so the block kernels see arbitrary bytes too.
 * Build and run: tests/fuzz/README.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/gguf.h"
#include "ops/quant.h"

static int memfd = -1;
static char memfd_path[64];
static volatile unsigned sink; /* keeps the byte-touching loops alive */

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
        abort();
    }
}

static unsigned touch(const void *p, size_t n) {
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += ((const unsigned char *)p)[i];
    return sum;
}

static void check_metadata(const gguf_file *f, size_t file_size) {
    unsigned sum = 0;
    for (int64_t id = 0; id < gguf_n_kv(f); id++) {
        const char *key = gguf_kv_key(f, id);
        const gguf_value *v = gguf_kv_value(f, id);
        check(key && *key && v, "key and value");
        check(gguf_find_key(f, key) == id, "gguf_find_key finds each key");
        check((unsigned)v->type < GGUF_TYPE_COUNT, "value type in range");
        g4_error err;
        switch (v->type) {
        case GGUF_TYPE_STRING: {
            const char *s;
            uint64_t len;
            check(gguf_get_str(f, key, &s, &len, &err) == 0 && s == v->str && len <= file_size, "string");
            check(s[len] == '\0', "string terminated");
            sum += touch(s, len);
            break;
        }
        case GGUF_TYPE_ARRAY: {
            gguf_array a;
            check(gguf_get_arr(f, key, v->arr.type, &a, &err) == 0, "array getter");
            check(a.type != GGUF_TYPE_ARRAY && (unsigned)a.type < GGUF_TYPE_COUNT, "element type");
            if (a.type == GGUF_TYPE_STRING) {
                check(a.n <= file_size / 8, "string count bounded by the file");
                for (uint64_t i = 0; i < a.n; i++) {
                    check(a.strs[i][a.lens[i]] == '\0', "array string terminated");
                    sum += touch(a.strs[i], a.lens[i]);
                }
            } else {
                size_t size = gguf_type_bytes(a.type);
                check(a.n * size <= file_size, "array bounded by the file");
                check((uintptr_t)a.data % size == 0, "array aligned");
                sum += touch(a.data, a.n * size);
                if (a.type == GGUF_TYPE_BOOL)
                    for (uint64_t i = 0; i < a.n; i++) check(((const uint8_t *)a.data)[i] <= 1, "bools are 0/1");
            }
            uint32_t u;
            check(gguf_get_u32(f, key, &u, &err) == -1, "an array is not a u32");
            break;
        }
        case GGUF_TYPE_UINT32: {
            uint32_t u;
            check(gguf_get_u32(f, key, &u, &err) == 0 && u == v->v.u32, "u32 getter");
            break;
        }
        case GGUF_TYPE_FLOAT32: {
            float x;
            check(gguf_get_f32(f, key, &x, &err) == 0, "f32 getter");
            break;
        }
        default: {
            bool b;
            check((gguf_get_bool(f, key, &b, &err) == 0) == (v->type == GGUF_TYPE_BOOL), "bool getter");
        }
        }
    }
    sink = sum;
}

static void check_tensors(const gguf_file *f, const unsigned char *lo, const unsigned char *hi) {
    uint64_t align = gguf_alignment(f);
    check(align && (align & (align - 1)) == 0, "alignment a power of two");
    if (gguf_n_tensors(f) > 0) check(gguf_data_offset(f) % align == 0, "data section aligned");
    unsigned sum = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const g4_tensor *t = gguf_tensor(f, i);
        const gguf_tensor_info *info = gguf_tensor_ggml(f, i);
        check(t && info && t->name && *t->name, "tensor has a name");
        check(gguf_find_tensor(f, t->name) == t, "gguf_find_tensor finds each tensor");
        check(t->ndim >= 0 && t->ndim <= GGUF_MAX_DIMS && (uint32_t)t->ndim == info->n_dims, "ndim");
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            check(t->shape[d] == info->ne[t->ndim - 1 - d], "shape is ne reversed");
            numel *= t->shape[d];
        }
        check(numel == t->numel, "numel matches shape");
        check(info->offset % align == 0, "offset aligned");
        int64_t row = info->ne[0];
        uint64_t nbytes;
        check(g4_dtype_nbytes(t->dtype, row, row ? numel / row : 0, &nbytes) == 0 && nbytes == t->nbytes,
              "nbytes from shape and type");
        const unsigned char *p = t->data;
        check(p >= lo && p <= hi && t->nbytes <= (size_t)(hi - p), "data inside the file");
        sum += touch(p, t->nbytes);
        if (g4_dtype_is_quantized(t->dtype)) {
            check((uintptr_t)p % 2 == 0, "blocks aligned");
            if (t->nbytes > 0) {
                float *out = malloc((size_t)row * sizeof *out);
                size_t row_bytes = g4_dtype_row_bytes(t->dtype, row);
                for (int64_t r = 0; r < numel / row; r++)
                    check(g4_dequantize_row(t->dtype, p + r * row_bytes, out, row) == 0, "dequantize");
                for (int64_t k = 0; k < row; k++) out[k] = 1.0f;
                volatile float dot = g4_quant_dot_row(t->dtype, p, out, row);
                (void)dot;
                free(out);
            }
        } else {
            check((uintptr_t)p % g4_dtype_size(t->dtype) == 0, "elements aligned");
        }
    }
    check(gguf_tensor(f, gguf_n_tensors(f)) == NULL, "gguf_tensor past the end");
    sink = sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memfd < 0) {
        memfd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
        check(memfd >= 0, "memfd_create");
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    check(ftruncate(memfd, 0) == 0, "ftruncate");
    check(pwrite(memfd, data, size, 0) == (ssize_t)size, "pwrite");

    gguf_file *f;
    g4_error err;
    err.msg[0] = '\0';
    if (gguf_open(memfd_path, &f, &err) != 0) {
        check(f == NULL && err.msg[0] != '\0', "failure leaves no file and a message");
        return 0;
    }
    check(gguf_data_offset(f) <= size, "data section inside the file");
    check_metadata(f, size);
    /* The map is not visible here; bound views by the first tensor's base. */
    const unsigned char *base = NULL;
    if (gguf_n_tensors(f) > 0) base = (const unsigned char *)gguf_tensor(f, 0)->data - gguf_data_offset(f) -
                                      gguf_tensor_ggml(f, 0)->offset;
    if (base) check_tensors(f, base, base + size);
    else check_tensors(f, NULL, NULL);
    (void)gguf_find_tensor(f, "token_embd.weight");
    (void)gguf_find_key(f, "general.architecture");
    gguf_close(f);
    return 0;
}
