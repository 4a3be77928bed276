/* Tests for src/io/gguf.c and src/io/gguf_write.c:
 *  - a file with every metadata value type and every tensor type, written
 *    with our writer, reads back exactly (values, shapes, bytes, alignment);
 *  - malformed files (one per validation rule) fail with specific messages,
 *    and every truncation of a valid file fails;
 *  - writer misuse fails cleanly and leaves no file behind;
 *  - interop with llama.cpp's own GGUF code (libggml-base.so, dlopen'ed from
 *    build/llama/ or $G4_LLAMA_LIB_DIR; run tools/fetch_llama.sh): ggml reads
 *    our file with the same values, offsets and tensor bytes; ggml writes the
 *    same content and our reader reads it; and both writers produce the same
 *    bytes. Without the library the test fails. */
#include "check.h"
#include "scratch_dir.h"
#include "io/gguf.h"
#include "ops/half.h"
#include "ops/quant.h"

#include <dlfcn.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* ---- the content of the round-trip file ---- */

static const uint8_t a_u8[] = {0, 7, 255};
static const int8_t a_i8[] = {-128, -1, 127};
static const uint16_t a_u16[] = {1, 65535};
static const int16_t a_i16[] = {-32768, 12345};
static const uint32_t a_u32[] = {0, 4000000000u, 17};
static const int32_t a_i32[] = {-2000000000, 0, 106, 1};
static const uint64_t a_u64[] = {UINT64_MAX, 1};
static const int64_t a_i64[] = {INT64_MIN, -1, 42};
static const float a_f32[] = {1.5f, -0.0f, 1e-30f, -3.25e10f};
static const double a_f64[] = {3.141592653589793, -1e300};
static const uint8_t a_bool[] = {1, 0, 0, 1, 1};
static const char *const a_str[] = {"<pad>", "", "\xe2\x96\x81hello", "<0x00>", "sliding_attention"};

static const uint8_t v_u8 = 200;
static const int8_t v_i8 = -5;
static const uint16_t v_u16 = 60000;
static const int16_t v_i16 = -30000;
static const uint32_t v_u32 = 4000000000u;
static const int32_t v_i32 = -2000000000;
static const uint64_t v_u64 = (1ull << 63) + 5;
static const int64_t v_i64 = -(1ll << 62);
static const float v_f32 = 1e-6f;
static const double v_f64 = -2.25;
static const uint8_t v_true = 1, v_false = 0;

typedef struct kv_spec {
    const char *key;
    gguf_type type; /* ARRAY: elements of elem */
    gguf_type elem;
    uint64_t n;
    const void *data; /* scalar: the value; STRING: the string; arrays: elements */
} kv_spec;

#define ARR(key, t, a) {key, GGUF_TYPE_ARRAY, t, sizeof a / sizeof a[0], a}
static const kv_spec kvs[] = {
    {"general.architecture", GGUF_TYPE_STRING, 0, 0, "gemma4"},
    {"t.u8", GGUF_TYPE_UINT8, 0, 0, &v_u8},
    {"t.i8", GGUF_TYPE_INT8, 0, 0, &v_i8},
    {"t.u16", GGUF_TYPE_UINT16, 0, 0, &v_u16},
    {"t.i16", GGUF_TYPE_INT16, 0, 0, &v_i16},
    {"t.u32", GGUF_TYPE_UINT32, 0, 0, &v_u32},
    {"t.i32", GGUF_TYPE_INT32, 0, 0, &v_i32},
    {"t.u64", GGUF_TYPE_UINT64, 0, 0, &v_u64},
    {"t.i64", GGUF_TYPE_INT64, 0, 0, &v_i64},
    {"t.f32", GGUF_TYPE_FLOAT32, 0, 0, &v_f32},
    {"t.f64", GGUF_TYPE_FLOAT64, 0, 0, &v_f64},
    {"t.true", GGUF_TYPE_BOOL, 0, 0, &v_true},
    {"t.false", GGUF_TYPE_BOOL, 0, 0, &v_false},
    {"t.str", GGUF_TYPE_STRING, 0, 0, "{{ bos_token }}\n<start_of_turn>"},
    {"t.empty_str", GGUF_TYPE_STRING, 0, 0, ""},
    ARR("t.arr.u8", GGUF_TYPE_UINT8, a_u8),
    ARR("t.arr.i8", GGUF_TYPE_INT8, a_i8),
    ARR("t.arr.u16", GGUF_TYPE_UINT16, a_u16),
    ARR("t.arr.i16", GGUF_TYPE_INT16, a_i16),
    ARR("t.arr.u32", GGUF_TYPE_UINT32, a_u32),
    ARR("t.arr.i32", GGUF_TYPE_INT32, a_i32),
    ARR("t.arr.u64", GGUF_TYPE_UINT64, a_u64),
    ARR("t.arr.i64", GGUF_TYPE_INT64, a_i64),
    ARR("t.arr.f32", GGUF_TYPE_FLOAT32, a_f32),
    ARR("t.arr.f64", GGUF_TYPE_FLOAT64, a_f64),
    ARR("t.arr.bool", GGUF_TYPE_BOOL, a_bool),
    ARR("t.arr.str", GGUF_TYPE_STRING, a_str),
    {"t.arr.empty", GGUF_TYPE_ARRAY, GGUF_TYPE_UINT32, 0, a_u32},
};
#define N_KVS (int)(sizeof kvs / sizeof kvs[0])

typedef struct tensor_spec {
    const char *name;
    g4_dtype dtype;
    uint32_t ggml_type;
    int ndim;
    int64_t shape[4]; /* outermost first */
    unsigned char *data;
    size_t nbytes;
} tensor_spec;

/* No leading dims of 1 (ggml's writer would drop them) so both writers
 * agree byte for byte; no empty tensor either (ggml's writer records
 * ne = {32, 0} as the 1-D {32}: see test_writer_errors for ours). */
static tensor_spec tensors[] = {
    {"f32.weight", G4_DTYPE_F32, 0, 2, {3, 5}, 0, 0},
    {"f16.weight", G4_DTYPE_F16, 1, 2, {2, 7}, 0, 0},
    {"bf16.weight", G4_DTYPE_BF16, 30, 1, {4}, 0, 0},
    {"blk.0.q8_0.weight", G4_DTYPE_Q8_0, 8, 2, {2, 64}, 0, 0},
    {"blk.0.q4_0.weight", G4_DTYPE_Q4_0, 2, 2, {3, 32}, 0, 0},
    {"blk.0.q4_1.weight", G4_DTYPE_Q4_1, 3, 2, {2, 32}, 0, 0},
    {"blk.0.q5_0.weight", G4_DTYPE_Q5_0, 6, 2, {2, 32}, 0, 0},
    {"blk.0.q5_1.weight", G4_DTYPE_Q5_1, 7, 2, {2, 32}, 0, 0},
    {"blk.1.q4_K.weight", G4_DTYPE_Q4_K, 12, 2, {2, 256}, 0, 0},
    {"blk.1.q5_K.weight", G4_DTYPE_Q5_K, 13, 1, {256}, 0, 0},
    {"blk.1.ffn_gate_up_exps.weight", G4_DTYPE_Q6_K, 14, 4, {2, 3, 2, 256}, 0, 0},
    {"ids", G4_DTYPE_I32, 26, 1, {5}, 0, 0},
};
#define N_TENSORS (int)(sizeof tensors / sizeof tensors[0])

static void make_tensor_data(void) {
    srand(7);
    for (int i = 0; i < N_TENSORS; i++) {
        tensor_spec *t = &tensors[i];
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        t->nbytes = g4_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) * (size_t)(numel / (t->shape[t->ndim - 1] ? t->shape[t->ndim - 1] : 1));
        if (numel == 0) t->nbytes = 0;
        t->data = malloc(t->nbytes + 1);
        float *x = malloc((size_t)(numel + 1) * sizeof *x);
        for (int64_t k = 0; k < numel; k++) x[k] = (float)rand() / RAND_MAX - 0.5f;
        switch (t->dtype) {
        case G4_DTYPE_F32: memcpy(t->data, x, t->nbytes); break;
        case G4_DTYPE_F16:
            for (int64_t k = 0; k < numel; k++) ((uint16_t *)t->data)[k] = g4_f32_to_f16_rne(x[k]);
            break;
        case G4_DTYPE_BF16:
            for (int64_t k = 0; k < numel; k++) ((uint16_t *)t->data)[k] = g4_f32_to_bf16(x[k]);
            break;
        case G4_DTYPE_I32:
            for (int64_t k = 0; k < numel; k++) ((int32_t *)t->data)[k] = (int32_t)(k * 1000 - 7);
            break;
        default: g4_quantize_row(t->dtype, x, t->data, numel); break;
        }
        free(x);
    }
}

static void write_ours(const char *path, uint32_t alignment) {
    gguf_writer *w;
    g4_error err = {{0}};
    CHECK(gguf_writer_open(path, &w, &err) == 0, "%s", err.msg);
    int rc = 0;
    if (alignment) rc |= gguf_writer_add_u32(w, "general.alignment", alignment, &err);
    for (int i = 0; i < N_KVS && rc == 0; i++) {
        const kv_spec *k = &kvs[i];
        const void *d = k->data;
        switch (k->type) {
        case GGUF_TYPE_UINT8: rc = gguf_writer_add_u8(w, k->key, *(const uint8_t *)d, &err); break;
        case GGUF_TYPE_INT8: rc = gguf_writer_add_i8(w, k->key, *(const int8_t *)d, &err); break;
        case GGUF_TYPE_UINT16: rc = gguf_writer_add_u16(w, k->key, *(const uint16_t *)d, &err); break;
        case GGUF_TYPE_INT16: rc = gguf_writer_add_i16(w, k->key, *(const int16_t *)d, &err); break;
        case GGUF_TYPE_UINT32: rc = gguf_writer_add_u32(w, k->key, *(const uint32_t *)d, &err); break;
        case GGUF_TYPE_INT32: rc = gguf_writer_add_i32(w, k->key, *(const int32_t *)d, &err); break;
        case GGUF_TYPE_UINT64: rc = gguf_writer_add_u64(w, k->key, *(const uint64_t *)d, &err); break;
        case GGUF_TYPE_INT64: rc = gguf_writer_add_i64(w, k->key, *(const int64_t *)d, &err); break;
        case GGUF_TYPE_FLOAT32: rc = gguf_writer_add_f32(w, k->key, *(const float *)d, &err); break;
        case GGUF_TYPE_FLOAT64: rc = gguf_writer_add_f64(w, k->key, *(const double *)d, &err); break;
        case GGUF_TYPE_BOOL: rc = gguf_writer_add_bool(w, k->key, *(const uint8_t *)d, &err); break;
        case GGUF_TYPE_STRING: rc = gguf_writer_add_str(w, k->key, d, &err); break;
        default:
            rc = k->elem == GGUF_TYPE_STRING ? gguf_writer_add_arr_str(w, k->key, d, k->n, &err)
                                             : gguf_writer_add_arr(w, k->key, k->elem, d, k->n, &err);
        }
    }
    for (int i = 0; i < N_TENSORS && rc == 0; i++)
        rc = gguf_writer_add_tensor(w, tensors[i].name, tensors[i].dtype, tensors[i].ndim, tensors[i].shape, &err);
    /* The first tensor in one call, the rest in 13-byte pieces that span
     * tensor boundaries (and the empty tensor). */
    if (rc == 0) rc = gguf_writer_write(w, tensors[0].data, tensors[0].nbytes, &err);
    size_t total = 0;
    for (int i = 1; i < N_TENSORS; i++) total += tensors[i].nbytes;
    unsigned char *all = malloc(total + 1), *p = all;
    for (int i = 1; i < N_TENSORS; i++) {
        memcpy(p, tensors[i].data, tensors[i].nbytes);
        p += tensors[i].nbytes;
    }
    for (size_t off = 0; off < total && rc == 0; off += 13)
        rc = gguf_writer_write(w, all + off, total - off < 13 ? total - off : 13, &err);
    free(all);
    CHECK(rc == 0, "writing %s: %s", path, err.msg);
    if (rc == 0) CHECK(gguf_writer_finish(w, &err) == 0, "finish: %s", err.msg);
    else gguf_writer_abort(w);
}

static int value_equals(const kv_spec *k, const gguf_value *v) {
    if (v->type != k->type) return 0;
    switch (k->type) {
    case GGUF_TYPE_STRING: return v->str_len == strlen(k->data) && strcmp(v->str, k->data) == 0;
    case GGUF_TYPE_BOOL: return v->v.b == (*(const uint8_t *)k->data != 0);
    case GGUF_TYPE_ARRAY:
        if (v->arr.type != k->elem || v->arr.n != k->n) return 0;
        if (k->elem == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < k->n; i++) {
                const char *want = ((const char *const *)k->data)[i];
                if (v->arr.lens[i] != strlen(want) || strcmp(v->arr.strs[i], want) != 0) return 0;
            }
            return 1;
        }
        if (k->n && ((uintptr_t)v->arr.data % gguf_type_bytes(k->elem)) != 0) return 0; /* aligned copy */
        return k->n == 0 || memcmp(v->arr.data, k->data, k->n * gguf_type_bytes(k->elem)) == 0;
    default: return memcmp(&v->v, k->data, gguf_type_bytes(k->type)) == 0;
    }
}

static void check_ours(const char *path, uint32_t alignment) {
    gguf_file *f;
    g4_error err = {{0}};
    if (gguf_open(path, &f, &err) != 0) {
        CHECK(0, "gguf_open %s: %s", path, err.msg);
        return;
    }
    uint64_t align = alignment ? alignment : 32;
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == align, "version %u alignment %llu", gguf_version(f),
          (unsigned long long)gguf_alignment(f));
    CHECK(gguf_n_kv(f) == N_KVS + (alignment != 0), "n_kv %lld", (long long)gguf_n_kv(f));
    for (int i = 0; i < N_KVS; i++) {
        int64_t id = gguf_find_key(f, kvs[i].key);
        CHECK(id == i + (alignment != 0) && strcmp(gguf_kv_key(f, id), kvs[i].key) == 0, "key %s at %lld",
              kvs[i].key, (long long)id);
        if (id >= 0) CHECK(value_equals(&kvs[i], gguf_kv_value(f, id)), "value of %s", kvs[i].key);
    }
    CHECK(gguf_find_key(f, "t.missing") == -1 && gguf_kv_value(f, gguf_n_kv(f)) == NULL, "absent keys");

    /* Typed getters. */
    uint32_t u32;
    int32_t i32;
    float f32;
    bool b;
    const char *s;
    uint64_t len;
    gguf_array arr;
    CHECK(gguf_get_u32(f, "t.u32", &u32, &err) == 0 && u32 == v_u32, "get_u32");
    CHECK(gguf_get_i32(f, "t.i32", &i32, &err) == 0 && i32 == v_i32, "get_i32");
    CHECK(gguf_get_f32(f, "t.f32", &f32, &err) == 0 && f32 == v_f32, "get_f32");
    CHECK(gguf_get_bool(f, "t.true", &b, &err) == 0 && b, "get_bool");
    CHECK(gguf_get_str(f, "general.architecture", &s, &len, &err) == 0 && strcmp(s, "gemma4") == 0 && len == 6,
          "get_str");
    CHECK(gguf_get_arr(f, "t.arr.f32", GGUF_TYPE_FLOAT32, &arr, &err) == 0 && arr.n == 4 &&
              ((const float *)arr.data)[3] == -3.25e10f,
          "get_arr f32");
    CHECK(gguf_get_arr(f, "t.arr.str", GGUF_TYPE_COUNT, &arr, &err) == 0 && arr.type == GGUF_TYPE_STRING &&
              arr.n == 5 && strcmp(arr.strs[2], "\xe2\x96\x81hello") == 0,
          "get_arr any");
    CHECK(gguf_get_u32(f, "t.i32", &u32, &err) == -1 && strstr(err.msg, "'t.i32' is i32, expected u32") &&
              strstr(err.msg, path),
          "wrong type: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.nope", &u32, &err) == -1 && strstr(err.msg, "'t.nope' is missing"), "missing: %s",
          err.msg);
    CHECK(gguf_get_u32(f, "t.arr.u32", &u32, &err) == -1 && strstr(err.msg, "is an array of u32, expected u32"),
          "array as scalar: %s", err.msg);
    CHECK(gguf_get_arr(f, "t.arr.u32", GGUF_TYPE_INT32, &arr, &err) == -1 &&
              strstr(err.msg, "is an array of u32, expected an array of i32"),
          "array of the wrong type: %s", err.msg);
    CHECK(gguf_get_arr(f, "t.u32", GGUF_TYPE_UINT32, &arr, &err) == -1 &&
              strstr(err.msg, "is u32, expected an array of u32"),
          "scalar as array: %s", err.msg);

    /* Tensors: order, shapes in PyTorch order, bytes, alignment. */
    CHECK(gguf_n_tensors(f) == N_TENSORS, "n_tensors %lld", (long long)gguf_n_tensors(f));
    CHECK(gguf_data_offset(f) % align == 0, "data section aligned");
    for (int i = 0; i < N_TENSORS && i < gguf_n_tensors(f); i++) {
        const tensor_spec *want = &tensors[i];
        const g4_tensor *t = gguf_tensor(f, i);
        const gguf_tensor_info *info = gguf_tensor_ggml(f, i);
        CHECK(strcmp(t->name, want->name) == 0 && gguf_find_tensor(f, want->name) == t, "tensor %d name %s", i,
              t->name);
        CHECK(t->dtype == want->dtype && info->ggml_type == want->ggml_type, "%s dtype", want->name);
        int same_shape = t->ndim == want->ndim && (int)info->n_dims == want->ndim;
        for (int d = 0; d < want->ndim && same_shape; d++)
            same_shape = t->shape[d] == want->shape[d] && info->ne[want->ndim - 1 - d] == want->shape[d];
        for (int d = want->ndim; d < GGUF_MAX_DIMS; d++) same_shape = same_shape && info->ne[d] == 1;
        CHECK(same_shape, "%s shape", want->name);
        CHECK(t->nbytes == want->nbytes && (t->nbytes == 0 || memcmp(t->data, want->data, t->nbytes) == 0),
              "%s data (%zu bytes, want %zu)", want->name, t->nbytes, want->nbytes);
        CHECK(info->offset % align == 0 && (uintptr_t)t->data % align == 0, "%s aligned", want->name);
    }
    CHECK(gguf_tensor(f, N_TENSORS) == NULL && gguf_tensor(f, -1) == NULL && gguf_find_tensor(f, "nope") == NULL,
          "absent tensors");
    gguf_close(f);
}

/* ---- malformed files ---- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void b_u32(buf *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(buf *b, uint64_t v) { b_put(b, &v, 8); }
static void b_str(buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, GGUF_TYPE_UINT32);
    b_u32(b, v);
}
/* ne innermost first, as in the file. */
static void b_tensor(buf *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t offset) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, (uint64_t)ne[d]);
    b_u32(b, type);
    b_u64(b, offset);
}
static void b_pad(buf *b, size_t alignment) {
    while (b->n % alignment) b_put(b, "", 1);
}
static void b_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_put(b, "", 1);
}

static void expect_fail_at(int line, buf *b, const char *want) {
    const char *path = tmp_path("bad.gguf");
    write_bytes(path, b->p, b->n);
    gguf_file *f = (gguf_file *)1;
    g4_error err = {{0}};
    int rc = gguf_open(path, &f, &err);
    if (rc != -1 || f != NULL || !strstr(err.msg, want) || !strstr(err.msg, path)) {
        fprintf(stderr, "%s:%d: expected failure containing \"%s\", got rc=%d msg=\"%s\"\n", __FILE__, line, want,
                rc, err.msg);
        check_failures++;
        if (rc == 0) gguf_close(f);
    }
    free(b->p);
    *b = (buf){0};
}
#define EXPECT_FAIL(b, want) expect_fail_at(__LINE__, &(b), want)

static void test_malformed(void) {
    buf b = {0};
    const int64_t ne4[] = {4}, ne_q[] = {33}, ne2[] = {4, 2};

    /* A valid base, to be sure the cases below fail for their one defect. */
    b_header(&b, 3, 1, 1);
    b_kv_u32(&b, "a", 7);
    b_tensor(&b, "t", 1, ne4, 0, 0);
    b_pad(&b, 32);
    b_zeros(&b, 16);
    {
        const char *path = tmp_path("base.gguf");
        write_bytes(path, b.p, b.n);
        gguf_file *f;
        g4_error err;
        CHECK(gguf_open(path, &f, &err) == 0, "base file: %s", err.msg);
        if (f) gguf_close(f);
        free(b.p);
        b = (buf){0};
    }

    b_put(&b, "GGML", 4); b_u32(&b, 3); b_u64(&b, 0); b_u64(&b, 0);
    EXPECT_FAIL(b, "not a GGUF file (starts with \"GGML\"");
    b_header(&b, 1, 0, 0);
    EXPECT_FAIL(b, "unsupported GGUF version 1");
    b_header(&b, 4, 0, 0);
    EXPECT_FAIL(b, "unsupported GGUF version 4");
    b_header(&b, 0x03000000u, 0, 0);
    EXPECT_FAIL(b, "big-endian");
    b_put(&b, "GGUF\3\0\0", 7);
    EXPECT_FAIL(b, "truncated: 7 bytes");
    b_header(&b, 3, 0, 1u << 30);
    EXPECT_FAIL(b, "key-value count 1073741824 is impossible");
    b_header(&b, 3, (uint64_t)1 << 62, 0);
    EXPECT_FAIL(b, "tensor count 4611686018427387904 is impossible");

    /* Metadata. */
    b_header(&b, 3, 0, 1); b_u64(&b, 1ull << 40); b_put(&b, "abcdefghijklm", 13);
    EXPECT_FAIL(b, "key 0: string length 1099511627776 runs past the end");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_STRING); b_u64(&b, 100); b_put(&b, "short", 5);
    EXPECT_FAIL(b, "the value of key 'k': string length 100 runs past the end");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, 13); b_u32(&b, 0);
    EXPECT_FAIL(b, "the value of key 'k' has unknown value type 13");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_ARRAY); b_u32(&b, GGUF_TYPE_ARRAY); b_u64(&b, 1);
    b_u32(&b, GGUF_TYPE_UINT8); b_u64(&b, 1); b_put(&b, "x", 1);
    EXPECT_FAIL(b, "the value of key 'k': arrays of arrays are not supported");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_ARRAY); b_u32(&b, 77); b_u64(&b, 1); b_u32(&b, 0);
    EXPECT_FAIL(b, "unknown array element type 77");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_ARRAY); b_u32(&b, GGUF_TYPE_UINT32);
    b_u64(&b, 1ull << 61); b_u64(&b, 0);
    EXPECT_FAIL(b, "2305843009213693952 elements of u32 cannot fit in the 8 bytes left");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_ARRAY); b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 3); b_str(&b, "one");
    EXPECT_FAIL(b, "3 strings cannot fit in the 11 bytes left");
    b_header(&b, 3, 0, 1); b_str(&b, "k"); b_u32(&b, GGUF_TYPE_ARRAY); b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 2); b_str(&b, "one"); b_u64(&b, 9); b_put(&b, "ab", 2);
    EXPECT_FAIL(b, "string length 9 runs past the end");
    b_header(&b, 3, 0, 1); b_str(&b, ""); b_u32(&b, GGUF_TYPE_UINT8); b_put(&b, "x", 1);
    EXPECT_FAIL(b, "key 0 is empty");
    b_header(&b, 3, 0, 1); b_u64(&b, 3); b_put(&b, "a\0b", 3); b_u32(&b, GGUF_TYPE_UINT8); b_put(&b, "x", 1);
    EXPECT_FAIL(b, "key 0 contains a NUL byte");
    b_header(&b, 3, 0, 3); b_kv_u32(&b, "dup", 1); b_kv_u32(&b, "other", 2); b_kv_u32(&b, "dup", 3);
    EXPECT_FAIL(b, "duplicate metadata key 'dup'");
    b_header(&b, 3, 0, 1); b_str(&b, "general.alignment"); b_u32(&b, GGUF_TYPE_INT32); b_u32(&b, 32);
    EXPECT_FAIL(b, "general.alignment is i32, expected u32");
    b_header(&b, 3, 0, 1); b_kv_u32(&b, "general.alignment", 48);
    EXPECT_FAIL(b, "general.alignment 48 is not a power of two");
    b_header(&b, 3, 0, 1); b_kv_u32(&b, "general.alignment", 0);
    EXPECT_FAIL(b, "general.alignment 0 is not a power of two");
    b_header(&b, 3, 0, 2); b_kv_u32(&b, "a", 1); b_str(&b, "b"); b_u32(&b, GGUF_TYPE_UINT64); b_u32(&b, 0);
    EXPECT_FAIL(b, "truncated: the value of key 'b' needs 8 bytes");

    /* Tensor infos. */
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 5, (const int64_t[]){1, 1, 1, 1, 1}, 0, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "tensor 't' has 5 dims, more than GGUF's 4");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 2, (const int64_t[]){4, -3}, 0, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "tensor 't' dim 1 is negative (-3)");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 3, (const int64_t[]){1ll << 32, 1ll << 32, 2}, 0, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "tensor 't': element count overflows");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 3, (const int64_t[]){0, 1ll << 40, 1ll << 40}, 0, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "tensor 't': element count overflows"); /* even with a 0 among the dims */
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, (const int64_t[]){1ll << 62}, 0, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "tensor 't': byte size overflows");
    b_header(&b, 3, 1, 0); b_tensor(&b, "blk.0.attn_q.weight", 1, ne4, 23, 0); b_pad(&b, 32); b_zeros(&b, 64);
    EXPECT_FAIL(b, "tensor 'blk.0.attn_q.weight' has ggml type 23 (IQ4_XS), not supported");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 10, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "has ggml type 10 (Q2_K), not supported");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 4, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "has ggml type 4 (Q4_2 (removed)), not supported");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 999, 0); b_pad(&b, 32);
    EXPECT_FAIL(b, "has ggml type 999 (unknown), not supported");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne_q, 2, 0); b_pad(&b, 32); b_zeros(&b, 64);
    EXPECT_FAIL(b, "tensor 't': rows of 33 elements are not whole Q4_0 blocks of 32");
    b_header(&b, 3, 1, 0); b_tensor(&b, "", 1, ne4, 0, 0); b_pad(&b, 32); b_zeros(&b, 16);
    EXPECT_FAIL(b, "tensor 0's name is empty");
    b_header(&b, 3, 2, 0); b_tensor(&b, "t", 1, ne4, 0, 0); b_tensor(&b, "t", 1, ne4, 0, 32); b_pad(&b, 32);
    b_zeros(&b, 48);
    EXPECT_FAIL(b, "duplicate tensor name 't'");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 0, 16); b_pad(&b, 32); b_zeros(&b, 64);
    EXPECT_FAIL(b, "tensor 't' offset 16 is not a multiple of the alignment 32");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 2, ne2, 0, 0); b_pad(&b, 32); b_zeros(&b, 31);
    EXPECT_FAIL(b, "tensor 't' data (32 bytes at offset 0) runs past the end of the data section (31 bytes)");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 0, 1ull << 63); b_pad(&b, 32); b_zeros(&b, 16);
    EXPECT_FAIL(b, "runs past the end of the data section");
    b_header(&b, 3, 2, 0); b_tensor(&b, "a", 2, ne2, 0, 0); b_tensor(&b, "b", 1, ne4, 0, 0); b_pad(&b, 32);
    b_zeros(&b, 64);
    EXPECT_FAIL(b, "tensor 'b' overlaps tensor 'a'");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 0, 0);
    EXPECT_FAIL(b, "the data section would start at offset 64, past the end of the file (57 bytes)");
    b_header(&b, 3, 1, 1); b_kv_u32(&b, "general.alignment", 1); b_tensor(&b, "t", 1, ne4, 0, 1); b_zeros(&b, 17);
    EXPECT_FAIL(b, "tensor 't' data at offset 1 is unaligned for F32");
    b_header(&b, 3, 1, 0); b_tensor(&b, "t", 1, ne4, 0, 0); b_u32(&b, 0);
    EXPECT_FAIL(b, "past the end of the file");
    b_header(&b, 3, 1, 0); b_str(&b, "token_embd.weight"); b_u32(&b, 2); b_u64(&b, 4);
    EXPECT_FAIL(b, "truncated: tensor 'token_embd.weight' needs 8 bytes");

    /* Not a file. */
    gguf_file *f;
    g4_error err = {{0}};
    CHECK(gguf_open(tmpdir, &f, &err) == -1 && strstr(err.msg, "not a regular file"), "directory: %s", err.msg);
    CHECK(gguf_open(tmp_path("absent.gguf"), &f, &err) == -1 && strstr(err.msg, "No such file"), "absent: %s",
          err.msg);
}

/* Every prefix of a valid file that cuts into its header or tensor data
 * fails (cuts inside the final padding leave a complete file). */
static void test_truncations(const char *path) {
    size_t n;
    unsigned char *all = read_all(path, &n);
    gguf_file *f;
    g4_error err;
    if (!all || gguf_open(path, &f, &err) != 0) {
        CHECK(0, "cannot reread %s", path);
        free(all);
        return;
    }
    size_t end = (size_t)gguf_data_offset(f);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        size_t e = (size_t)(gguf_data_offset(f) + gguf_tensor_ggml(f, i)->offset) + gguf_tensor(f, i)->nbytes;
        if (e > end) end = e;
    }
    gguf_close(f);
    int accepted = 0, unclear = 0;
    const char *cut = tmp_path("cut.gguf");
    for (size_t len = 0; len < end; len++) {
        write_bytes(cut, all, len);
        if (gguf_open(cut, &f, &err) == 0) {
            accepted++;
            gguf_close(f);
        } else if (!strstr(err.msg, "truncated") && !strstr(err.msg, "past the end") &&
                   !strstr(err.msg, "cannot fit") && !strstr(err.msg, "impossible")) {
            if (unclear++ == 0) fprintf(stderr, "  cut at %zu: %s\n", len, err.msg);
        }
    }
    CHECK(accepted == 0 && unclear == 0, "%d of %zu truncations accepted, %d with unclear messages", accepted, end,
          unclear);
    write_bytes(cut, all, end);
    CHECK(gguf_open(cut, &f, &err) == 0, "cut after the last tensor's bytes: %s", err.msg);
    if (f) gguf_close(f);
    free(all);
}

/* ---- writer misuse ---- */

static int dir_entries(void) {
    int n = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", tmpdir);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

#define EXPECT_WFAIL(call, want)                                                                  \
    do {                                                                                          \
        g4_error e_ = {{0}};                                                                      \
        int rc_ = (call);                                                                         \
        CHECK(rc_ == -1 && strstr(e_.msg, want), "%s: rc %d msg \"%s\"", #call, rc_, e_.msg);     \
    } while (0)

static void test_writer_errors(void) {
    const char *path = tmp_path("w.gguf");
    unlink(path);
    int before = dir_entries();
    gguf_writer *w;
    g4_error err;
    const int64_t shape[] = {2, 32}, bad_row[] = {2, 33}, five[] = {1, 1, 1, 1, 1}, neg[] = {-1, 32};
    char long_name[80];
    memset(long_name, 'x', 64);
    long_name[64] = '\0';

#define FRESH() CHECK(gguf_writer_open(path, &w, &err) == 0, "%s", err.msg)
    FRESH();
    CHECK(gguf_writer_add_u32(w, "a", 1, &err) == 0, "%s", err.msg);
    EXPECT_WFAIL(gguf_writer_add_i32(w, "a", 2, &e_), "duplicate metadata key 'a'");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_u8(w, "", 1, &e_), "empty metadata key");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_u32(w, "general.alignment", 24, &e_), "general.alignment 24 is not a power of two");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_i32(w, "general.alignment", 32, &e_), "general.alignment must be a u32");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_arr(w, "s", GGUF_TYPE_STRING, NULL, 0, &e_), "fixed-size elements, not string");
    gguf_writer_abort(w);
    FRESH();
    CHECK(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 2, shape, &err) == 0, "%s", err.msg);
    EXPECT_WFAIL(gguf_writer_add_tensor(w, "t", G4_DTYPE_F16, 2, shape, &e_), "duplicate tensor name 't'");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_tensor(w, long_name, G4_DTYPE_F32, 2, shape, &e_), "longer than llama.cpp's limit");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_tensor(w, "t", G4_DTYPE_U8, 2, shape, &e_), "GGUF cannot store U8");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 5, five, &e_), "has 5 dims");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_tensor(w, "t", G4_DTYPE_Q8_0, 2, bad_row, &e_), "not whole Q8_0 blocks of 32");
    gguf_writer_abort(w);
    FRESH();
    EXPECT_WFAIL(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 2, neg, &e_), "negative dim");
    gguf_writer_abort(w);
    /* Data: too much, metadata after data, too little at finish. */
    FRESH();
    CHECK(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 2, shape, &err) == 0, "%s", err.msg);
    float data[65] = {0};
    CHECK(gguf_writer_write(w, data, 64, &err) == 0, "%s", err.msg);
    EXPECT_WFAIL(gguf_writer_add_u32(w, "late", 1, &e_), "metadata key 'late' added after tensor data");
    gguf_writer_abort(w);
    FRESH();
    CHECK(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 2, shape, &err) == 0, "%s", err.msg);
    EXPECT_WFAIL(gguf_writer_write(w, data, 260, &e_), "4 bytes of tensor data beyond the last tensor");
    gguf_writer_abort(w);
    FRESH();
    CHECK(gguf_writer_add_tensor(w, "t", G4_DTYPE_F32, 2, shape, &err) == 0, "%s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "u", G4_DTYPE_F32, 2, shape, &err) == 0, "%s", err.msg);
    CHECK(gguf_writer_write(w, data, 100, &err) == 0, "%s", err.msg);
    EXPECT_WFAIL(gguf_writer_finish(w, &e_), "tensor 't' has 100 of its 256 bytes (and 1 more tensors follow)");
    CHECK(access(path, F_OK) != 0, "a failed finish leaves no file");
    CHECK(dir_entries() == before, "no temporary files left behind (%d entries, %d before)", dir_entries(), before);

    /* A file with only metadata, then one with a zero-dim (scalar) tensor. */
    FRESH();
    CHECK(gguf_writer_add_str(w, "general.name", "meta only", &err) == 0, "%s", err.msg);
    CHECK(gguf_writer_finish(w, &err) == 0, "%s", err.msg);
    gguf_file *f;
    CHECK(gguf_open(path, &f, &err) == 0, "%s", err.msg);
    if (f) {
        CHECK(gguf_n_tensors(f) == 0 && gguf_n_kv(f) == 1, "meta-only file");
        gguf_close(f);
    }
    FRESH();
    float one = 0.25f;
    CHECK(gguf_writer_add_tensor(w, "layer_output_scale.weight", G4_DTYPE_F32, 0, NULL, &err) == 0 &&
              gguf_writer_write(w, &one, 4, &err) == 0 && gguf_writer_finish(w, &err) == 0,
          "%s", err.msg);
    CHECK(gguf_open(path, &f, &err) == 0, "%s", err.msg);
    if (f) {
        const g4_tensor *t = gguf_tensor(f, 0);
        CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4 && *(const float *)t->data == 0.25f, "scalar");
        gguf_close(f);
    }
    /* An empty tensor between two others owns no bytes and breaks nothing. */
    FRESH();
    const int64_t empty[] = {0, 32}, row[] = {32};
    unsigned char q[2 * 18] = {1};
    CHECK(gguf_writer_add_tensor(w, "a", G4_DTYPE_Q4_0, 1, row, &err) == 0 &&
              gguf_writer_add_tensor(w, "empty", G4_DTYPE_Q4_0, 2, empty, &err) == 0 &&
              gguf_writer_add_tensor(w, "b", G4_DTYPE_Q4_0, 1, row, &err) == 0 && gguf_writer_write(w, q, 36, &err) == 0 &&
              gguf_writer_finish(w, &err) == 0,
          "%s", err.msg);
    CHECK(gguf_open(path, &f, &err) == 0, "%s", err.msg);
    if (f) {
        const g4_tensor *e = gguf_find_tensor(f, "empty"), *b = gguf_find_tensor(f, "b");
        CHECK(e && e->nbytes == 0 && e->numel == 0 && e->ndim == 2 && e->shape[0] == 0 && b &&
                  gguf_tensor_ggml(f, 2)->offset == 32 && memcmp(b->data, q + 18, 18) == 0,
              "empty tensor");
        gguf_close(f);
    }
#undef FRESH
}

/* ---- llama.cpp's ggml ---- */

struct ggml_context;
struct ggml_tensor;
struct gguf_context;
struct ggml_init_params_abi {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
};
struct gguf_init_params_abi {
    bool no_alloc;
    struct ggml_context **ctx;
};

static struct {
    void *lib;
    struct gguf_context *(*init_empty)(void);
    struct gguf_context *(*init_from_file)(const char *, struct gguf_init_params_abi);
    void (*free_ctx)(struct gguf_context *);
    uint32_t (*get_version)(const struct gguf_context *);
    size_t (*get_alignment)(const struct gguf_context *);
    size_t (*get_data_offset)(const struct gguf_context *);
    int64_t (*get_n_kv)(const struct gguf_context *);
    int64_t (*find_key)(const struct gguf_context *, const char *);
    int (*get_kv_type)(const struct gguf_context *, int64_t);
    int (*get_arr_type)(const struct gguf_context *, int64_t);
    const void *(*get_val_data)(const struct gguf_context *, int64_t);
    const char *(*get_val_str)(const struct gguf_context *, int64_t);
    size_t (*get_arr_n)(const struct gguf_context *, int64_t);
    const void *(*get_arr_data)(const struct gguf_context *, int64_t);
    const char *(*get_arr_str)(const struct gguf_context *, int64_t, size_t);
    int64_t (*get_n_tensors)(const struct gguf_context *);
    int64_t (*find_tensor)(const struct gguf_context *, const char *);
    size_t (*get_tensor_offset)(const struct gguf_context *, int64_t);
    const int64_t *(*get_tensor_ne)(const struct gguf_context *, int64_t);
    int (*get_tensor_type)(const struct gguf_context *, int64_t);
    size_t (*get_tensor_size)(const struct gguf_context *, int64_t);
    void (*set_u8)(struct gguf_context *, const char *, uint8_t);
    void (*set_i8)(struct gguf_context *, const char *, int8_t);
    void (*set_u16)(struct gguf_context *, const char *, uint16_t);
    void (*set_i16)(struct gguf_context *, const char *, int16_t);
    void (*set_u32)(struct gguf_context *, const char *, uint32_t);
    void (*set_i32)(struct gguf_context *, const char *, int32_t);
    void (*set_u64)(struct gguf_context *, const char *, uint64_t);
    void (*set_i64)(struct gguf_context *, const char *, int64_t);
    void (*set_f32)(struct gguf_context *, const char *, float);
    void (*set_f64)(struct gguf_context *, const char *, double);
    void (*set_bool)(struct gguf_context *, const char *, bool);
    void (*set_str)(struct gguf_context *, const char *, const char *);
    void (*set_arr_data)(struct gguf_context *, const char *, int, const void *, size_t);
    void (*set_arr_str)(struct gguf_context *, const char *, const char **, size_t);
    void (*add_tensor)(struct gguf_context *, const struct ggml_tensor *);
    void (*set_tensor_data)(struct gguf_context *, const char *, const void *);
    bool (*write_to_file)(const struct gguf_context *, const char *, bool);
    struct ggml_context *(*ggml_init)(struct ggml_init_params_abi);
    void (*ggml_free)(struct ggml_context *);
    struct ggml_tensor *(*new_tensor)(struct ggml_context *, int, int, const int64_t *);
    struct ggml_tensor *(*set_name)(struct ggml_tensor *, const char *);
    void *(*get_data)(const struct ggml_tensor *);
    struct ggml_tensor *(*get_tensor)(struct ggml_context *, const char *);
} gg;

static int load_ggml(void) {
    const char *dir = getenv("G4_LLAMA_LIB_DIR");
    if (!dir || !*dir) dir = "build/llama/package/bins/linux-x64";
    char path[1024];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    gg.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(gg.lib != NULL,
          "cannot load llama.cpp's %s (%s).\n"
          "  The interop tests need it: run tools/fetch_llama.sh from the repository root\n"
          "  (npm pack @node-llama-cpp/linux-x64@3.22.1 into build/llama/), or set G4_LLAMA_LIB_DIR\n"
          "  to a directory holding libggml-base.so",
          path, dlerror());
    if (!gg.lib) return -1;
    int missing = 0;
#define LOAD(field, name)                                                                   \
    do {                                                                                    \
        *(void **)&gg.field = dlsym(gg.lib, name);                                          \
        if (!gg.field) {                                                                    \
            CHECK(0, "libggml-base.so has no %s", name);                                    \
            missing++;                                                                      \
        }                                                                                   \
    } while (0)
    LOAD(init_empty, "gguf_init_empty");
    LOAD(init_from_file, "gguf_init_from_file");
    LOAD(free_ctx, "gguf_free");
    LOAD(get_version, "gguf_get_version");
    LOAD(get_alignment, "gguf_get_alignment");
    LOAD(get_data_offset, "gguf_get_data_offset");
    LOAD(get_n_kv, "gguf_get_n_kv");
    LOAD(find_key, "gguf_find_key");
    LOAD(get_kv_type, "gguf_get_kv_type");
    LOAD(get_arr_type, "gguf_get_arr_type");
    LOAD(get_val_data, "gguf_get_val_data");
    LOAD(get_val_str, "gguf_get_val_str");
    LOAD(get_arr_n, "gguf_get_arr_n");
    LOAD(get_arr_data, "gguf_get_arr_data");
    LOAD(get_arr_str, "gguf_get_arr_str");
    LOAD(get_n_tensors, "gguf_get_n_tensors");
    LOAD(find_tensor, "gguf_find_tensor");
    LOAD(get_tensor_offset, "gguf_get_tensor_offset");
    LOAD(get_tensor_ne, "gguf_get_tensor_ne");
    LOAD(get_tensor_type, "gguf_get_tensor_type");
    LOAD(get_tensor_size, "gguf_get_tensor_size");
    LOAD(set_u8, "gguf_set_val_u8");
    LOAD(set_i8, "gguf_set_val_i8");
    LOAD(set_u16, "gguf_set_val_u16");
    LOAD(set_i16, "gguf_set_val_i16");
    LOAD(set_u32, "gguf_set_val_u32");
    LOAD(set_i32, "gguf_set_val_i32");
    LOAD(set_u64, "gguf_set_val_u64");
    LOAD(set_i64, "gguf_set_val_i64");
    LOAD(set_f32, "gguf_set_val_f32");
    LOAD(set_f64, "gguf_set_val_f64");
    LOAD(set_bool, "gguf_set_val_bool");
    LOAD(set_str, "gguf_set_val_str");
    LOAD(set_arr_data, "gguf_set_arr_data");
    LOAD(set_arr_str, "gguf_set_arr_str");
    LOAD(add_tensor, "gguf_add_tensor");
    LOAD(set_tensor_data, "gguf_set_tensor_data");
    LOAD(write_to_file, "gguf_write_to_file");
    LOAD(ggml_init, "ggml_init");
    LOAD(ggml_free, "ggml_free");
    LOAD(new_tensor, "ggml_new_tensor");
    LOAD(set_name, "ggml_set_name");
    LOAD(get_data, "ggml_get_data");
    LOAD(get_tensor, "ggml_get_tensor");
#undef LOAD
    return missing ? -1 : 0;
}

/* ggml's reader on a file with our content (written by either writer):
 * the same keys, types, values, tensor types, shapes, offsets and bytes. */
static void check_with_ggml(const char *path, uint32_t alignment) {
    struct ggml_context *mem = NULL;
    struct gguf_context *ctx = gg.init_from_file(path, (struct gguf_init_params_abi){false, &mem});
    if (!ctx) {
        CHECK(0, "ggml's gguf_init_from_file rejects %s", path);
        return;
    }
    gguf_file *ours;
    g4_error err;
    if (gguf_open(path, &ours, &err) != 0) {
        CHECK(0, "%s", err.msg);
        gg.free_ctx(ctx);
        gg.ggml_free(mem);
        return;
    }
    CHECK(gg.get_version(ctx) == 3 && gg.get_alignment(ctx) == (alignment ? alignment : 32) &&
              gg.get_data_offset(ctx) == gguf_data_offset(ours),
          "ggml: version %u alignment %zu data offset %zu (ours %llu)", gg.get_version(ctx), gg.get_alignment(ctx),
          gg.get_data_offset(ctx), (unsigned long long)gguf_data_offset(ours));
    CHECK(gg.get_n_kv(ctx) == N_KVS + (alignment != 0), "ggml: n_kv %lld", (long long)gg.get_n_kv(ctx));
    for (int i = 0; i < N_KVS; i++) {
        const kv_spec *k = &kvs[i];
        int64_t id = gg.find_key(ctx, k->key);
        if (id < 0) {
            CHECK(0, "ggml: no key %s", k->key);
            continue;
        }
        int ok = gg.get_kv_type(ctx, id) == (int)k->type;
        if (ok && k->type == GGUF_TYPE_STRING) {
            ok = strcmp(gg.get_val_str(ctx, id), k->data) == 0;
        } else if (ok && k->type == GGUF_TYPE_ARRAY) {
            ok = gg.get_arr_type(ctx, id) == (int)k->elem && gg.get_arr_n(ctx, id) == k->n;
            for (uint64_t j = 0; ok && j < k->n; j++) {
                if (k->elem == GGUF_TYPE_STRING)
                    ok = strcmp(gg.get_arr_str(ctx, id, j), ((const char *const *)k->data)[j]) == 0;
                else
                    ok = memcmp((const char *)gg.get_arr_data(ctx, id) + j * gguf_type_bytes(k->elem),
                                (const char *)k->data + j * gguf_type_bytes(k->elem), gguf_type_bytes(k->elem)) == 0;
            }
        } else if (ok) {
            ok = memcmp(gg.get_val_data(ctx, id), k->data, gguf_type_bytes(k->type)) == 0;
        }
        CHECK(ok, "ggml: value of %s", k->key);
    }
    CHECK(gg.get_n_tensors(ctx) == N_TENSORS, "ggml: n_tensors %lld", (long long)gg.get_n_tensors(ctx));
    for (int i = 0; i < N_TENSORS; i++) {
        const tensor_spec *t = &tensors[i];
        int64_t id = gg.find_tensor(ctx, t->name);
        CHECK(id == i, "ggml: tensor %s at %lld", t->name, (long long)id);
        if (id < 0) continue;
        const int64_t *ne = gg.get_tensor_ne(ctx, id);
        int same = gg.get_tensor_type(ctx, id) == (int)t->ggml_type && gg.get_tensor_size(ctx, id) == t->nbytes &&
                   gg.get_tensor_offset(ctx, id) == gguf_tensor_ggml(ours, i)->offset;
        for (int d = 0; d < 4; d++) same = same && ne[d] == (d < t->ndim ? t->shape[t->ndim - 1 - d] : 1);
        const struct ggml_tensor *gt = gg.get_tensor(mem, t->name);
        same = same && gt && (t->nbytes == 0 || memcmp(gg.get_data(gt), t->data, t->nbytes) == 0);
        CHECK(same, "ggml: tensor %s type, shape, offset or bytes differ", t->name);
    }
    gguf_close(ours);
    gg.free_ctx(ctx);
    gg.ggml_free(mem);
}

/* ggml's writer with the same content. */
static int write_with_ggml(const char *path, uint32_t alignment) {
    struct gguf_context *ctx = gg.init_empty();
    if (alignment) gg.set_u32(ctx, "general.alignment", alignment);
    for (int i = 0; i < N_KVS; i++) {
        const kv_spec *k = &kvs[i];
        const void *d = k->data;
        switch (k->type) {
        case GGUF_TYPE_UINT8: gg.set_u8(ctx, k->key, *(const uint8_t *)d); break;
        case GGUF_TYPE_INT8: gg.set_i8(ctx, k->key, *(const int8_t *)d); break;
        case GGUF_TYPE_UINT16: gg.set_u16(ctx, k->key, *(const uint16_t *)d); break;
        case GGUF_TYPE_INT16: gg.set_i16(ctx, k->key, *(const int16_t *)d); break;
        case GGUF_TYPE_UINT32: gg.set_u32(ctx, k->key, *(const uint32_t *)d); break;
        case GGUF_TYPE_INT32: gg.set_i32(ctx, k->key, *(const int32_t *)d); break;
        case GGUF_TYPE_UINT64: gg.set_u64(ctx, k->key, *(const uint64_t *)d); break;
        case GGUF_TYPE_INT64: gg.set_i64(ctx, k->key, *(const int64_t *)d); break;
        case GGUF_TYPE_FLOAT32: gg.set_f32(ctx, k->key, *(const float *)d); break;
        case GGUF_TYPE_FLOAT64: gg.set_f64(ctx, k->key, *(const double *)d); break;
        case GGUF_TYPE_BOOL: gg.set_bool(ctx, k->key, *(const uint8_t *)d != 0); break;
        case GGUF_TYPE_STRING: gg.set_str(ctx, k->key, d); break;
        default:
            if (k->elem == GGUF_TYPE_STRING) gg.set_arr_str(ctx, k->key, (const char **)d, k->n);
            else gg.set_arr_data(ctx, k->key, (int)k->elem, d, k->n);
        }
    }
    struct ggml_context *mem = gg.ggml_init((struct ggml_init_params_abi){1 << 20, NULL, false});
    for (int i = 0; i < N_TENSORS; i++) {
        const tensor_spec *t = &tensors[i];
        int64_t ne[4];
        for (int d = 0; d < t->ndim; d++) ne[d] = t->shape[t->ndim - 1 - d];
        struct ggml_tensor *gt = gg.new_tensor(mem, (int)t->ggml_type, t->ndim, ne);
        gg.set_name(gt, t->name);
        if (t->nbytes) memcpy(gg.get_data(gt), t->data, t->nbytes);
        gg.add_tensor(ctx, gt);
        /* ggml allocates nothing for an empty tensor, and its writer
         * insists on a data pointer. */
        if (!t->nbytes) gg.set_tensor_data(ctx, t->name, t);
    }
    bool ok = gg.write_to_file(ctx, path, false);
    gg.free_ctx(ctx);
    gg.ggml_free(mem);
    CHECK(ok, "ggml's gguf_write_to_file %s", path);
    return ok ? 0 : -1;
}

static void test_interop(void) {
    if (load_ggml() != 0) return;
    const char *ours = tmp_path("ours.gguf"), *theirs = tmp_path("ggml.gguf"), *ours64 = tmp_path("ours64.gguf");
    write_ours(ours, 0);
    check_with_ggml(ours, 0); /* our writer -> ggml's reader */
    /* ggml's writer lays tensors out with 32 whatever general.alignment
     * says, so only our writer -> ggml's reader is checked at 64. */
    write_ours(ours64, 64);
    check_with_ggml(ours64, 64);
    if (write_with_ggml(theirs, 0) == 0) {
        check_ours(theirs, 0); /* ggml's writer -> our reader */
        size_t n1, n2;
        unsigned char *a = read_all(ours, &n1), *b = read_all(theirs, &n2);
        int same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
        CHECK(same, "our writer and ggml's differ for the same content: %zu vs %zu bytes", n1, n2);
        if (same)
            printf("  our writer and ggml's gguf_write_to_file give the same %zu bytes; ggml reads ours (also at "
                   "alignment 64), we read ggml's\n", n1);
        free(a);
        free(b);
    }
    dlclose(gg.lib);
}

int main(void) {
    char template[] = "/tmp/g4_test_gguf_XXXXXX";
    scratch_dir_make(template);
    make_tensor_data();
    const char *path = tmp_path("round_trip.gguf");
    write_ours(path, 0);
    check_ours(path, 0);
    const char *path64 = tmp_path("round_trip64.gguf");
    write_ours(path64, 64);
    check_ours(path64, 64);
    test_truncations(path);
    test_malformed();
    test_writer_errors();
    test_interop();
    for (int i = 0; i < N_TENSORS; i++) free(tensors[i].data);
    scratch_dir_remove();
    return check_exit("test_gguf");
}
