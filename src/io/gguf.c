/* GGUF reader: parses the header, metadata and tensor infos of a mapped file
 * in one pass with a bounds-checked cursor, then validates the tensor
 * layout. Format and API: gguf.h. */
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- type tables ---- */

static const struct {
    const char *label;
    size_t bytes;
} value_types[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = {"u8", 1},    [GGUF_TYPE_INT8] = {"i8", 1},
    [GGUF_TYPE_UINT16] = {"u16", 2},  [GGUF_TYPE_INT16] = {"i16", 2},
    [GGUF_TYPE_UINT32] = {"u32", 4},  [GGUF_TYPE_INT32] = {"i32", 4},
    [GGUF_TYPE_FLOAT32] = {"f32", 4}, [GGUF_TYPE_BOOL] = {"bool", 1},
    [GGUF_TYPE_STRING] = {"string", 0}, [GGUF_TYPE_ARRAY] = {"array", 0},
    [GGUF_TYPE_UINT64] = {"u64", 8},  [GGUF_TYPE_INT64] = {"i64", 8},
    [GGUF_TYPE_FLOAT64] = {"f64", 8},
};

const char *gguf_type_label(gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? value_types[t].label : "unknown";
}

size_t gguf_type_bytes(gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? value_types[t].bytes : 0;
}

/* enum ggml_type of llama.cpp v0.5.0 (gaps are types ggml has removed), and
 * the g4_dtype each maps to where this engine has one. */
#define NO_DTYPE G4_DTYPE_COUNT
static const struct {
    const char *name;
    g4_dtype dtype;
} ggml_types[] = {
    [0] = {"F32", G4_DTYPE_F32},       [1] = {"F16", G4_DTYPE_F16},
    [2] = {"Q4_0", G4_DTYPE_Q4_0},     [3] = {"Q4_1", G4_DTYPE_Q4_1},
    [4] = {"Q4_2 (removed)", NO_DTYPE}, [5] = {"Q4_3 (removed)", NO_DTYPE},
    [6] = {"Q5_0", G4_DTYPE_Q5_0},     [7] = {"Q5_1", G4_DTYPE_Q5_1},
    [8] = {"Q8_0", G4_DTYPE_Q8_0},     [9] = {"Q8_1", NO_DTYPE},
    [10] = {"Q2_K", NO_DTYPE},         [11] = {"Q3_K", NO_DTYPE},
    [12] = {"Q4_K", G4_DTYPE_Q4_K},    [13] = {"Q5_K", G4_DTYPE_Q5_K},
    [14] = {"Q6_K", G4_DTYPE_Q6_K},    [15] = {"Q8_K", NO_DTYPE},
    [16] = {"IQ2_XXS", NO_DTYPE},      [17] = {"IQ2_XS", NO_DTYPE},
    [18] = {"IQ3_XXS", NO_DTYPE},      [19] = {"IQ1_S", NO_DTYPE},
    [20] = {"IQ4_NL", NO_DTYPE},       [21] = {"IQ3_S", NO_DTYPE},
    [22] = {"IQ2_S", NO_DTYPE},        [23] = {"IQ4_XS", NO_DTYPE},
    [24] = {"I8", G4_DTYPE_I8},        [25] = {"I16", G4_DTYPE_I16},
    [26] = {"I32", G4_DTYPE_I32},      [27] = {"I64", G4_DTYPE_I64},
    [28] = {"F64", G4_DTYPE_F64},      [29] = {"IQ1_M", NO_DTYPE},
    [30] = {"BF16", G4_DTYPE_BF16},    [31] = {"Q4_0_4_4 (removed)", NO_DTYPE},
    [32] = {"Q4_0_4_8 (removed)", NO_DTYPE}, [33] = {"Q4_0_8_8 (removed)", NO_DTYPE},
    [34] = {"TQ1_0", NO_DTYPE},        [35] = {"TQ2_0", NO_DTYPE},
    [36] = {"IQ4_NL_4_4 (removed)", NO_DTYPE}, [37] = {"IQ4_NL_4_8 (removed)", NO_DTYPE},
    [38] = {"IQ4_NL_8_8 (removed)", NO_DTYPE}, [39] = {"MXFP4", NO_DTYPE},
    [40] = {"NVFP4", NO_DTYPE},        [41] = {"Q1_0", NO_DTYPE},
    [42] = {"Q2_0", NO_DTYPE},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *gguf_ggml_type_name(uint32_t t) {
    return t < N_GGML_TYPES ? ggml_types[t].name : "unknown";
}

int gguf_dtype_from_ggml(uint32_t t, g4_dtype *out) {
    if (t >= N_GGML_TYPES || ggml_types[t].dtype == NO_DTYPE)
        return -1;
    *out = ggml_types[t].dtype;
    return 0;
}

int gguf_dtype_to_ggml(g4_dtype d, uint32_t *out) {
    for (uint32_t t = 0; t < N_GGML_TYPES; t++) {
        if (ggml_types[t].dtype == d && d != NO_DTYPE) {
            *out = t;
            return 0;
        }
    }
    return -1;
}

/* ---- the file ---- */

/* Owned copies of strings, arrays and tables, freed together. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

typedef struct kv_entry {
    const char *key;
    gguf_value value;
} kv_entry;

/* Lookup tables: names sorted with the ids they belong to. */
typedef struct name_index {
    const char *name;
    int64_t id;
} name_index;

typedef struct offset_index {
    uint64_t offset;
    int64_t id;
} offset_index;

struct gguf_file {
    char *path;
    const unsigned char *map;
    size_t size;
    uint32_t version;
    uint64_t alignment, data_offset;
    int64_t n_kv, n_tensors;
    kv_entry *kv;
    name_index *kv_by_key; /* sorted by key */
    g4_tensor *tensors;
    gguf_tensor_info *infos;
    name_index *tensors_by_name; /* sorted by name */
    arena_chunk *arena;
};

static void *arena_alloc(gguf_file *f, size_t n, size_t align) {
    arena_chunk *c = f->arena;
    if (c) {
        size_t at = (c->used + align - 1) & ~(align - 1);
        if (at <= c->cap && n <= c->cap - at) {
            c->used = at + n;
            return c->data + at;
        }
    }
    size_t cap = n > (64u << 10) ? n : (64u << 10);
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = n;
    c->next = f->arena;
    f->arena = c;
    return c->data;
}

/* A bounds-checked cursor over the map. `what` names the item being read,
 * for messages. */
typedef struct cursor {
    gguf_file *f;
    size_t pos;
    char what[200];
    g4_error *err;
} cursor;

static int fail(cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cursor *c, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return g4_fail(c->err, "%s: %s", c->f->path, msg);
}

static size_t remaining(const cursor *c) { return c->f->size - c->pos; }

static int need(cursor *c, uint64_t n) {
    if (n > remaining(c))
        return fail(c, "truncated: %s needs %llu bytes at offset %zu, the file has %zu",
                    c->what, (unsigned long long)n, c->pos, c->f->size);
    return 0;
}

static int read_raw(cursor *c, void *out, size_t n) {
    if (need(c, n) != 0) return -1;
    memcpy(out, c->f->map + c->pos, n);
    c->pos += n;
    return 0;
}

static int read_u32(cursor *c, uint32_t *v) { return read_raw(c, v, 4); }
static int read_u64(cursor *c, uint64_t *v) { return read_raw(c, v, 8); }

/* A string, copied NUL-terminated into the arena. */
static int read_string(cursor *c, const char **out, uint64_t *len_out) {
    uint64_t len;
    if (read_u64(c, &len) != 0) return -1;
    if (len > remaining(c))
        return fail(c, "%s: string length %llu runs past the end of the file (%zu bytes left)",
                    c->what, (unsigned long long)len, remaining(c));
    char *s = arena_alloc(c->f, (size_t)len + 1, 1);
    if (!s) return fail(c, "out of memory");
    memcpy(s, c->f->map + c->pos, (size_t)len);
    s[len] = '\0';
    c->pos += (size_t)len;
    *out = s;
    if (len_out) *len_out = len;
    return 0;
}

/* Keys and tensor names are looked up as C strings, so they must be one. */
static int read_name(cursor *c, const char **out) {
    uint64_t len;
    if (read_string(c, out, &len) != 0) return -1;
    if (len == 0) return fail(c, "%s is empty", c->what);
    if (strlen(*out) != len) return fail(c, "%s contains a NUL byte", c->what);
    return 0;
}

static int read_array(cursor *c, gguf_array *a) {
    uint32_t elem;
    if (read_u32(c, &elem) != 0 || read_u64(c, &a->n) != 0) return -1;
    if (elem == GGUF_TYPE_ARRAY) return fail(c, "%s: arrays of arrays are not supported", c->what);
    if (elem >= GGUF_TYPE_COUNT) return fail(c, "%s: unknown array element type %u", c->what, elem);
    a->type = (gguf_type)elem;
    if (a->type == GGUF_TYPE_STRING) {
        /* Each string takes at least its 8-byte length. */
        if (a->n > remaining(c) / 8)
            return fail(c, "%s: %llu strings cannot fit in the %zu bytes left", c->what,
                        (unsigned long long)a->n, remaining(c));
        const char **strs = arena_alloc(c->f, (size_t)a->n * sizeof *strs + 1, _Alignof(const char *));
        uint64_t *lens = arena_alloc(c->f, (size_t)a->n * sizeof *lens + 1, _Alignof(uint64_t));
        if (!strs || !lens) return fail(c, "out of memory");
        for (uint64_t i = 0; i < a->n; i++)
            if (read_string(c, &strs[i], &lens[i]) != 0) return -1;
        a->strs = strs;
        a->lens = lens;
        return 0;
    }
    size_t size = value_types[elem].bytes;
    if (a->n > remaining(c) / size)
        return fail(c, "%s: %llu elements of %s cannot fit in the %zu bytes left", c->what,
                    (unsigned long long)a->n, value_types[elem].label, remaining(c));
    unsigned char *data = arena_alloc(c->f, (size_t)a->n * size + 1, 8);
    if (!data || read_raw(c, data, (size_t)a->n * size) != 0) return data ? -1 : fail(c, "out of memory");
    if (a->type == GGUF_TYPE_BOOL)
        for (uint64_t i = 0; i < a->n; i++) data[i] = data[i] != 0;
    a->data = data;
    return 0;
}

static int read_value(cursor *c, gguf_value *v) {
    uint32_t type;
    if (read_u32(c, &type) != 0) return -1;
    if (type >= GGUF_TYPE_COUNT) return fail(c, "%s has unknown value type %u", c->what, type);
    v->type = (gguf_type)type;
    if (v->type == GGUF_TYPE_STRING) return read_string(c, &v->str, &v->str_len);
    if (v->type == GGUF_TYPE_ARRAY) return read_array(c, &v->arr);
    if (v->type == GGUF_TYPE_BOOL) {
        uint8_t b;
        if (read_raw(c, &b, 1) != 0) return -1;
        v->v.b = b != 0;
        return 0;
    }
    return read_raw(c, &v->v, value_types[type].bytes);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

static int cmp_offsets(const void *a, const void *b) {
    uint64_t x = ((const offset_index *)a)->offset, y = ((const offset_index *)b)->offset;
    return (x > y) - (x < y);
}

/* Sorts the index and returns the first name that occurs twice, or NULL. */
static const char *sort_names(name_index *index, int64_t n) {
    qsort(index, (size_t)n, sizeof *index, cmp_names);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(index[i - 1].name, index[i].name) == 0) return index[i].name;
    return NULL;
}

static int64_t find_name(const name_index *index, int64_t n, const char *name) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, index[mid].name);
        if (c == 0) return index[mid].id;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return -1;
}

/* Grows an array of count items to hold one more, doubling. */
static int grow(void **items, int64_t count, int64_t *cap, size_t size) {
    if (count < *cap) return 0;
    int64_t new_cap = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, (size_t)new_cap * size);
    if (!p) return -1;
    *items = p;
    *cap = new_cap;
    return 0;
}

static int read_header(cursor *c, uint64_t *n_tensors, uint64_t *n_kv) {
    gguf_file *f = c->f;
    snprintf(c->what, sizeof c->what, "the header");
    char magic[4];
    if (read_raw(c, magic, 4) != 0) return -1;
    if (memcmp(magic, "GGUF", 4) != 0) {
        char shown[5];
        for (int i = 0; i < 4; i++) shown[i] = magic[i] >= 32 && magic[i] < 127 ? magic[i] : '?';
        shown[4] = '\0';
        return fail(c, "not a GGUF file (starts with \"%s\", expected \"GGUF\")", shown);
    }
    if (read_u32(c, &f->version) != 0) return -1;
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0)
            return fail(c, "GGUF version 0x%08x: a big-endian file? Only little-endian files are supported",
                        f->version);
        return fail(c, "unsupported GGUF version %u (versions 2 and 3 are supported)", f->version);
    }
    if (read_u64(c, n_tensors) != 0 || read_u64(c, n_kv) != 0) return -1;
    /* A key-value pair takes at least 13 bytes, a tensor info 24. */
    if (*n_kv > remaining(c) / 13)
        return fail(c, "key-value count %llu is impossible in a %zu-byte file",
                    (unsigned long long)*n_kv, f->size);
    if (*n_tensors > remaining(c) / 24)
        return fail(c, "tensor count %llu is impossible in a %zu-byte file",
                    (unsigned long long)*n_tensors, f->size);
    return 0;
}

static int read_metadata(cursor *c, uint64_t n_kv) {
    gguf_file *f = c->f;
    int64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&f->kv, f->n_kv, &cap, sizeof *f->kv) != 0) return fail(c, "out of memory");
        kv_entry *e = &f->kv[f->n_kv];
        memset(e, 0, sizeof *e);
        snprintf(c->what, sizeof c->what, "key %llu", (unsigned long long)i);
        if (read_name(c, &e->key) != 0) return -1;
        snprintf(c->what, sizeof c->what, "the value of key '%.100s'", e->key);
        if (read_value(c, &e->value) != 0) return -1;
        f->n_kv++;
    }
    f->kv_by_key = malloc((size_t)(f->n_kv ? f->n_kv : 1) * sizeof *f->kv_by_key);
    if (!f->kv_by_key) return fail(c, "out of memory");
    for (int64_t i = 0; i < f->n_kv; i++) f->kv_by_key[i] = (name_index){f->kv[i].key, i};
    const char *dup = sort_names(f->kv_by_key, f->n_kv);
    if (dup) return fail(c, "duplicate metadata key '%.100s'", dup);

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t id = gguf_find_key(f, "general.alignment");
    if (id >= 0) {
        const gguf_value *v = &f->kv[id].value;
        if (v->type != GGUF_TYPE_UINT32)
            return fail(c, "general.alignment is %s, expected u32", gguf_type_label(v->type));
        if (v->v.u32 == 0 || (v->v.u32 & (v->v.u32 - 1)) != 0)
            return fail(c, "general.alignment %u is not a power of two", v->v.u32);
        f->alignment = v->v.u32;
    }
    return 0;
}

/* One tensor info; the checks that need only this tensor. */
static int read_tensor_info(cursor *c, uint64_t i) {
    gguf_file *f = c->f;
    g4_tensor *t = &f->tensors[i];
    gguf_tensor_info *info = &f->infos[i];
    snprintf(c->what, sizeof c->what, "tensor %llu's name", (unsigned long long)i);
    if (read_name(c, &t->name) != 0) return -1;
    snprintf(c->what, sizeof c->what, "tensor '%.100s'", t->name);
    if (read_u32(c, &info->n_dims) != 0) return -1;
    if (info->n_dims > GGUF_MAX_DIMS)
        return fail(c, "tensor '%.100s' has %u dims, more than GGUF's %d", t->name, info->n_dims,
                    GGUF_MAX_DIMS);
    /* The product of the non-zero dims must fit too, so that code using
     * the shape can multiply dims in any order, even with a 0 among them. */
    int64_t numel = 1, nonzero = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if ((uint32_t)d < info->n_dims && read_u64(c, &ne) != 0) return -1;
        if (ne > INT64_MAX)
            return fail(c, "tensor '%.100s' dim %d is negative (%lld)", t->name, d, (long long)ne);
        if (ne && __builtin_mul_overflow(nonzero, (int64_t)ne, &nonzero))
            return fail(c, "tensor '%.100s': element count overflows", t->name);
        numel *= (int64_t)ne;
        info->ne[d] = (int64_t)ne;
    }
    if (read_u32(c, &info->ggml_type) != 0 || read_u64(c, &info->offset) != 0) return -1;
    if (gguf_dtype_from_ggml(info->ggml_type, &t->dtype) != 0)
        return fail(c, "tensor '%.100s' has ggml type %u (%s), not supported", t->name, info->ggml_type,
                    gguf_ggml_type_name(info->ggml_type));
    int64_t row = info->ne[0], rows = row ? numel / row : 0;
    uint64_t nbytes;
    if (row % g4_dtype_block_elems(t->dtype) != 0)
        return fail(c, "tensor '%.100s': rows of %lld elements are not whole %s blocks of %lld", t->name,
                    (long long)row, g4_dtype_name(t->dtype), (long long)g4_dtype_block_elems(t->dtype));
    if (g4_dtype_nbytes(t->dtype, row, rows, &nbytes) != 0)
        return fail(c, "tensor '%.100s': byte size overflows", t->name);
    t->ndim = (int)info->n_dims;
    for (int d = 0; d < t->ndim; d++) t->shape[d] = info->ne[t->ndim - 1 - d];
    t->numel = numel;
    t->nbytes = (size_t)nbytes;
    return 0;
}

/* Element alignment the ops need for a type: the element for plain types,
 * the f16 fields for blocks. */
static size_t data_alignment(g4_dtype t) { return g4_dtype_is_quantized(t) ? 2 : g4_dtype_size(t); }

static int read_tensors(cursor *c, uint64_t n) {
    gguf_file *f = c->f;
    f->tensors = calloc((size_t)(n ? n : 1), sizeof *f->tensors);
    f->infos = calloc((size_t)(n ? n : 1), sizeof *f->infos);
    f->tensors_by_name = malloc((size_t)(n ? n : 1) * sizeof *f->tensors_by_name);
    offset_index *by_offset = malloc((size_t)(n ? n : 1) * sizeof *by_offset);
    if (!f->tensors || !f->infos || !f->tensors_by_name || !by_offset) {
        free(by_offset);
        return fail(c, "out of memory");
    }
    int rc = -1;
    for (uint64_t i = 0; i < n; i++) {
        if (read_tensor_info(c, i) != 0) goto done;
        f->n_tensors++;
    }
    /* The data section starts at the next multiple of the alignment (ggml
     * pads only when there are tensors). */
    f->data_offset = c->pos;
    if (n > 0) f->data_offset = (f->data_offset + f->alignment - 1) / f->alignment * f->alignment;
    if (f->data_offset > f->size) {
        fail(c, "truncated: the data section would start at offset %llu, past the end of the file (%zu bytes)",
             (unsigned long long)f->data_offset, f->size);
        goto done;
    }
    uint64_t data_size = f->size - f->data_offset;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        g4_tensor *t = &f->tensors[i];
        const gguf_tensor_info *info = &f->infos[i];
        if (info->offset % f->alignment != 0) {
            fail(c, "tensor '%.100s' offset %llu is not a multiple of the alignment %llu", t->name,
                 (unsigned long long)info->offset, (unsigned long long)f->alignment);
            goto done;
        }
        if (info->offset > data_size || t->nbytes > data_size - info->offset) {
            fail(c, "tensor '%.100s' data (%zu bytes at offset %llu) runs past the end of the data section "
                 "(%llu bytes)", t->name, t->nbytes, (unsigned long long)info->offset,
                 (unsigned long long)data_size);
            goto done;
        }
        t->data = f->map + f->data_offset + info->offset;
        if ((uintptr_t)t->data % data_alignment(t->dtype) != 0) {
            fail(c, "tensor '%.100s' data at offset %llu is unaligned for %s", t->name,
                 (unsigned long long)info->offset, g4_dtype_name(t->dtype));
            goto done;
        }
        f->tensors_by_name[i] = (name_index){t->name, i};
        by_offset[i] = (offset_index){info->offset, i};
    }
    const char *dup = sort_names(f->tensors_by_name, f->n_tensors);
    if (dup) {
        fail(c, "duplicate tensor name '%.100s'", dup);
        goto done;
    }
    /* In offset order, a tensor overlaps an earlier one iff it starts before
     * the furthest end so far. Empty tensors own no bytes. */
    qsort(by_offset, (size_t)f->n_tensors, sizeof *by_offset, cmp_offsets);
    int64_t furthest = -1;
    uint64_t furthest_end = 0;
    for (int64_t k = 0; k < f->n_tensors; k++) {
        int64_t i = by_offset[k].id;
        if (f->tensors[i].nbytes == 0) continue;
        if (furthest >= 0 && f->infos[i].offset < furthest_end) {
            fail(c, "tensor '%.100s' overlaps tensor '%.100s'", f->tensors[i].name, f->tensors[furthest].name);
            goto done;
        }
        furthest = i;
        furthest_end = f->infos[i].offset + f->tensors[i].nbytes;
    }
    rc = 0;
done:
    free(by_offset);
    return rc;
}

static int map_file(const char *path, gguf_file *f, g4_error *err) {
    /* O_NONBLOCK: a FIFO fails the S_ISREG check instead of hanging open(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return g4_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        g4_fail(err, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        g4_fail(err, "%s: not a regular file", path);
    } else if (st.st_size < 24) {
        g4_fail(err, "%s: truncated: %lld bytes, shorter than a GGUF header (24)", path, (long long)st.st_size);
    } else {
        /* Shared and read-only: pages come from the page cache, never copied.
         * A file truncated while mapped faults on access (SIGBUS). */
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            g4_fail(err, "%s: mmap failed: %s", path, strerror(errno));
        } else {
            f->map = map;
            f->size = (size_t)st.st_size;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

int gguf_open(const char *path, gguf_file **out, g4_error *err) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return g4_fail(err, "%s: out of memory", path);
    }
    cursor c = {.f = f, .err = err};
    uint64_t n_tensors, n_kv;
    if (map_file(path, f, err) != 0 || read_header(&c, &n_tensors, &n_kv) != 0 ||
        read_metadata(&c, n_kv) != 0 || read_tensors(&c, n_tensors) != 0) {
        gguf_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->size);
    for (arena_chunk *c = f->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(f->kv);
    free(f->kv_by_key);
    free(f->tensors);
    free(f->infos);
    free(f->tensors_by_name);
    free(f->path);
    free(f);
}

/* ---- access ---- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const char *gguf_kv_key(const gguf_file *f, int64_t id) {
    return id >= 0 && id < f->n_kv ? f->kv[id].key : NULL;
}

const gguf_value *gguf_kv_value(const gguf_file *f, int64_t id) {
    return id >= 0 && id < f->n_kv ? &f->kv[id].value : NULL;
}

int64_t gguf_find_key(const gguf_file *f, const char *key) { return find_name(f->kv_by_key, f->n_kv, key); }

const g4_tensor *gguf_tensor(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor_info *gguf_tensor_ggml(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->infos[i] : NULL;
}

const g4_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t id = find_name(f->tensors_by_name, f->n_tensors, name);
    return id >= 0 ? &f->tensors[id] : NULL;
}

/* The value of key if it has type want, else NULL and a message. */
static const gguf_value *typed(const gguf_file *f, const char *key, gguf_type want, g4_error *err) {
    int64_t id = gguf_find_key(f, key);
    if (id < 0) {
        g4_fail(err, "%s: metadata key '%s' is missing", f->path, key);
        return NULL;
    }
    const gguf_value *v = &f->kv[id].value;
    if (v->type != want) {
        if (v->type == GGUF_TYPE_ARRAY)
            g4_fail(err, "%s: metadata key '%s' is an array of %s, expected %s", f->path, key,
                    gguf_type_label(v->arr.type), gguf_type_label(want));
        else
            g4_fail(err, "%s: metadata key '%s' is %s, expected %s", f->path, key, gguf_type_label(v->type),
                    gguf_type_label(want));
        return NULL;
    }
    return v;
}

#define TYPED_GETTER(suffix, ctype, gtype, field)                                                  \
    int gguf_get_##suffix(const gguf_file *f, const char *key, ctype *out, g4_error *err) {       \
        const gguf_value *v = typed(f, key, gtype, err);                                           \
        if (!v) return -1;                                                                         \
        *out = v->v.field;                                                                         \
        return 0;                                                                                  \
    }
TYPED_GETTER(u8, uint8_t, GGUF_TYPE_UINT8, u8)
TYPED_GETTER(i8, int8_t, GGUF_TYPE_INT8, i8)
TYPED_GETTER(u16, uint16_t, GGUF_TYPE_UINT16, u16)
TYPED_GETTER(i16, int16_t, GGUF_TYPE_INT16, i16)
TYPED_GETTER(u32, uint32_t, GGUF_TYPE_UINT32, u32)
TYPED_GETTER(i32, int32_t, GGUF_TYPE_INT32, i32)
TYPED_GETTER(u64, uint64_t, GGUF_TYPE_UINT64, u64)
TYPED_GETTER(i64, int64_t, GGUF_TYPE_INT64, i64)
TYPED_GETTER(f32, float, GGUF_TYPE_FLOAT32, f32)
TYPED_GETTER(f64, double, GGUF_TYPE_FLOAT64, f64)
TYPED_GETTER(bool, bool, GGUF_TYPE_BOOL, b)

int gguf_get_str(const gguf_file *f, const char *key, const char **out, uint64_t *len, g4_error *err) {
    const gguf_value *v = typed(f, key, GGUF_TYPE_STRING, err);
    if (!v) return -1;
    *out = v->str;
    if (len) *len = v->str_len;
    return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, gguf_array *out, g4_error *err) {
    int64_t id = gguf_find_key(f, key);
    if (id < 0) return g4_fail(err, "%s: metadata key '%s' is missing", f->path, key);
    const gguf_value *v = &f->kv[id].value;
    if (v->type != GGUF_TYPE_ARRAY)
        return g4_fail(err, "%s: metadata key '%s' is %s, expected an array of %s", f->path, key,
                       gguf_type_label(v->type), elem == GGUF_TYPE_COUNT ? "any type" : gguf_type_label(elem));
    if (elem != GGUF_TYPE_COUNT && v->arr.type != elem)
        return g4_fail(err, "%s: metadata key '%s' is an array of %s, expected an array of %s", f->path, key,
                       gguf_type_label(v->arr.type), gguf_type_label(elem));
    *out = v->arr;
    return 0;
}
