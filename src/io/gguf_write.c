/* GGUF writer: metadata and tensor infos are collected in memory (they are
 * small; the tokenizer arrays are the largest, a few MiB), the header goes
 * out with the first tensor bytes, and tensor data streams through in the
 * order the tensors were added. The byte layout is the one ggml's
 * gguf_write_to_file produces for the same content. API: gguf.h. */
#include "io/gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct tensor_entry {
    char *name;
    g4_dtype dtype;
    uint32_t ggml_type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
} tensor_entry;

struct gguf_writer {
    char *path, *tmp_path;
    FILE *fp;
    int failed;
    /* Metadata, serialised as added. */
    unsigned char *meta;
    size_t meta_len, meta_cap;
    char **keys;
    uint64_t n_kv, keys_cap;
    uint64_t alignment;
    tensor_entry *tensors;
    int64_t n_tensors, tensors_cap;
    uint64_t data_size; /* padded offsets so far */
    /* Streaming state: the tensor being written and its bytes so far. */
    int header_written;
    int64_t current;
    uint64_t current_written;
};

static int wfail(gguf_writer *w, g4_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int wfail(gguf_writer *w, g4_error *err, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->failed = 1;
    return g4_fail(err, "%s: %s", w->path, msg);
}

static uint64_t pad_to(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

int gguf_writer_open(const char *path, gguf_writer **out, g4_error *err) {
    *out = NULL;
    gguf_writer *w = calloc(1, sizeof *w);
    size_t len = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp_path = malloc(len + 16))) {
        if (w) free(w->path);
        free(w);
        return g4_fail(err, "%s: out of memory", path);
    }
    /* Next to the target, so the final rename stays within one filesystem. */
    snprintf(w->tmp_path, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp_path);
    if (fd < 0 || !(w->fp = fdopen(fd, "wb"))) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(w->tmp_path);
        }
        free(w->tmp_path);
        free(w->path);
        free(w);
        return g4_fail(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; a model file is for reading */
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return 0;
}

/* ---- metadata ---- */

static int meta_put(gguf_writer *w, const void *p, size_t n) {
    if (n == 0) return 0;
    if (n > w->meta_cap - w->meta_len) {
        size_t cap = w->meta_cap ? w->meta_cap : 4096;
        while (n > cap - w->meta_len) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        unsigned char *m = realloc(w->meta, cap);
        if (!m) return -1;
        w->meta = m;
        w->meta_cap = cap;
    }
    memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
    return 0;
}

static int meta_u32(gguf_writer *w, uint32_t v) { return meta_put(w, &v, 4); }
static int meta_u64(gguf_writer *w, uint64_t v) { return meta_put(w, &v, 8); }
static int meta_str(gguf_writer *w, const char *s) {
    size_t n = strlen(s);
    return meta_u64(w, n) || meta_put(w, s, n);
}

/* Checks the writer can still take metadata and key is new, records it, and
 * writes the key and value type. */
static int begin_kv(gguf_writer *w, const char *key, gguf_type type, g4_error *err) {
    if (w->failed) return wfail(w, err, "writer already failed");
    if (w->header_written) return wfail(w, err, "metadata key '%s' added after tensor data", key);
    if (!key || !*key) return wfail(w, err, "empty metadata key");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return wfail(w, err, "duplicate metadata key '%s'", key);
    if (w->n_kv == w->keys_cap) {
        uint64_t cap = w->keys_cap ? 2 * w->keys_cap : 32;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k) return wfail(w, err, "out of memory");
        w->keys = k;
        w->keys_cap = cap;
    }
    if (!(w->keys[w->n_kv] = strdup(key)) || meta_str(w, key) || meta_u32(w, (uint32_t)type))
        return wfail(w, err, "out of memory");
    w->n_kv++;
    return 0;
}

/* The reader insists on a u32 general.alignment; so does ggml. */
static int not_alignment(gguf_writer *w, const char *key, g4_error *err) {
    if (key && strcmp(key, "general.alignment") == 0) return wfail(w, err, "general.alignment must be a u32");
    return 0;
}

static int add_scalar(gguf_writer *w, const char *key, gguf_type type, const void *v, g4_error *err) {
    if ((type != GGUF_TYPE_UINT32 && not_alignment(w, key, err)) || begin_kv(w, key, type, err)) return -1;
    if (meta_put(w, v, gguf_type_bytes(type)) != 0) return wfail(w, err, "out of memory");
    return 0;
}

#define ADD_SCALAR(suffix, ctype, gtype)                                                       \
    int gguf_writer_add_##suffix(gguf_writer *w, const char *key, ctype v, g4_error *err) {    \
        return add_scalar(w, key, gtype, &v, err);                                             \
    }
ADD_SCALAR(u8, uint8_t, GGUF_TYPE_UINT8)
ADD_SCALAR(i8, int8_t, GGUF_TYPE_INT8)
ADD_SCALAR(u16, uint16_t, GGUF_TYPE_UINT16)
ADD_SCALAR(i16, int16_t, GGUF_TYPE_INT16)
ADD_SCALAR(i32, int32_t, GGUF_TYPE_INT32)
ADD_SCALAR(u64, uint64_t, GGUF_TYPE_UINT64)
ADD_SCALAR(i64, int64_t, GGUF_TYPE_INT64)
ADD_SCALAR(f32, float, GGUF_TYPE_FLOAT32)
ADD_SCALAR(f64, double, GGUF_TYPE_FLOAT64)

int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v, g4_error *err) {
    if (key && strcmp(key, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1)) != 0)
            return wfail(w, err, "general.alignment %u is not a power of two", v);
        if (w->n_tensors > 0) return wfail(w, err, "general.alignment must be set before any tensor is added");
    }
    if (add_scalar(w, key, GGUF_TYPE_UINT32, &v, err) != 0) return -1;
    if (strcmp(key, "general.alignment") == 0) w->alignment = v;
    return 0;
}

int gguf_writer_add_bool(gguf_writer *w, const char *key, bool v, g4_error *err) {
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, GGUF_TYPE_BOOL, &b, err);
}

int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s, g4_error *err) {
    if (not_alignment(w, key, err) || begin_kv(w, key, GGUF_TYPE_STRING, err)) return -1;
    if (meta_str(w, s) != 0) return wfail(w, err, "out of memory");
    return 0;
}

int gguf_writer_add_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data, uint64_t n,
                        g4_error *err) {
    size_t size = gguf_type_bytes(elem);
    if (size == 0)
        return wfail(w, err, "metadata key '%s': gguf_writer_add_arr takes fixed-size elements, not %s", key,
                     gguf_type_label(elem));
    if (n > SIZE_MAX / size) return wfail(w, err, "metadata key '%s': array too large", key);
    if (not_alignment(w, key, err) || begin_kv(w, key, GGUF_TYPE_ARRAY, err)) return -1;
    if (meta_u32(w, (uint32_t)elem) || meta_u64(w, n)) return wfail(w, err, "out of memory");
    if (elem == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            uint8_t b = ((const uint8_t *)data)[i] != 0;
            if (meta_put(w, &b, 1) != 0) return wfail(w, err, "out of memory");
        }
    } else if (n && meta_put(w, data, (size_t)n * size) != 0) {
        return wfail(w, err, "out of memory");
    }
    return 0;
}

int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                            g4_error *err) {
    if (not_alignment(w, key, err) || begin_kv(w, key, GGUF_TYPE_ARRAY, err)) return -1;
    if (meta_u32(w, GGUF_TYPE_STRING) || meta_u64(w, n)) return wfail(w, err, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        if (meta_str(w, strs[i]) != 0) return wfail(w, err, "out of memory");
    return 0;
}

/* ---- tensors ---- */

int gguf_writer_add_tensor(gguf_writer *w, const char *name, g4_dtype dtype, int ndim, const int64_t *shape,
                           g4_error *err) {
    if (w->failed) return wfail(w, err, "writer already failed");
    if (w->header_written) return wfail(w, err, "tensor '%s' added after tensor data", name);
    size_t len = name ? strlen(name) : 0;
    if (len == 0) return wfail(w, err, "empty tensor name");
    if (len > GGUF_MAX_TENSOR_NAME)
        return wfail(w, err, "tensor name '%s' is longer than llama.cpp's limit of %d bytes", name,
                     GGUF_MAX_TENSOR_NAME);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return wfail(w, err, "duplicate tensor name '%s'", name);
    tensor_entry t = {.dtype = dtype, .n_dims = (uint32_t)ndim};
    if (gguf_dtype_to_ggml(dtype, &t.ggml_type) != 0)
        return wfail(w, err, "tensor '%s': GGUF cannot store %s", name, g4_dtype_name(dtype));
    if (ndim < 0 || ndim > GGUF_MAX_DIMS)
        return wfail(w, err, "tensor '%s' has %d dims; GGUF allows 0 to %d", name, ndim, GGUF_MAX_DIMS);
    int64_t numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < ndim ? shape[ndim - 1 - d] : 1;
        if (t.ne[d] < 0) return wfail(w, err, "tensor '%s' has a negative dim", name);
        if (__builtin_mul_overflow(numel, t.ne[d], &numel))
            return wfail(w, err, "tensor '%s': element count overflows", name);
    }
    int64_t row = t.ne[0], rows = row ? numel / row : 0;
    if (row % g4_dtype_block_elems(dtype) != 0)
        return wfail(w, err, "tensor '%s': rows of %lld elements are not whole %s blocks of %lld", name,
                     (long long)row, g4_dtype_name(dtype), (long long)g4_dtype_block_elems(dtype));
    if (g4_dtype_nbytes(dtype, row, rows, &t.nbytes) != 0 || t.nbytes > UINT64_MAX - w->data_size - w->alignment)
        return wfail(w, err, "tensor '%s': byte size overflows", name);
    t.offset = w->data_size;
    if (w->n_tensors == w->tensors_cap) {
        int64_t cap = w->tensors_cap ? 2 * w->tensors_cap : 64;
        tensor_entry *p = realloc(w->tensors, (size_t)cap * sizeof *p);
        if (!p) return wfail(w, err, "out of memory");
        w->tensors = p;
        w->tensors_cap = cap;
    }
    if (!(t.name = strdup(name))) return wfail(w, err, "out of memory");
    w->tensors[w->n_tensors++] = t;
    w->data_size = pad_to(t.offset + t.nbytes, w->alignment);
    return 0;
}

/* ---- output ---- */

static int put(gguf_writer *w, const void *p, size_t n, g4_error *err) {
    if (n && fwrite(p, 1, n, w->fp) != n) return wfail(w, err, "write failed: %s", strerror(errno));
    return 0;
}

static int put_zeros(gguf_writer *w, uint64_t n, g4_error *err) {
    static const unsigned char zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (put(w, zeros, k, err) != 0) return -1;
        n -= k;
    }
    return 0;
}

static int write_header(gguf_writer *w, g4_error *err) {
    uint32_t version = 3;
    uint64_t n_tensors = (uint64_t)w->n_tensors;
    if (put(w, "GGUF", 4, err) || put(w, &version, 4, err) || put(w, &n_tensors, 8, err) ||
        put(w, &w->n_kv, 8, err) || put(w, w->meta, w->meta_len, err))
        return -1;
    uint64_t pos = 24 + w->meta_len;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const tensor_entry *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        if (put(w, &len, 8, err) || put(w, t->name, len, err) || put(w, &t->n_dims, 4, err) ||
            put(w, t->ne, 8 * t->n_dims, err) || put(w, &t->ggml_type, 4, err) || put(w, &t->offset, 8, err))
            return -1;
        pos += 8 + len + 4 + 8 * t->n_dims + 4 + 8;
    }
    w->header_written = 1;
    return put_zeros(w, pad_to(pos, w->alignment) - pos, err);
}

/* Moves past finished (and empty) tensors, padding each to the alignment. */
static int advance(gguf_writer *w, g4_error *err) {
    while (w->current < w->n_tensors && w->current_written == w->tensors[w->current].nbytes) {
        const tensor_entry *t = &w->tensors[w->current];
        if (put_zeros(w, pad_to(t->nbytes, w->alignment) - t->nbytes, err) != 0) return -1;
        w->current++;
        w->current_written = 0;
    }
    return 0;
}

int gguf_writer_write(gguf_writer *w, const void *data, size_t n, g4_error *err) {
    if (w->failed) return wfail(w, err, "writer already failed");
    if (!w->header_written && (write_header(w, err) != 0 || advance(w, err) != 0)) return -1;
    const unsigned char *p = data;
    while (n > 0) {
        if (w->current >= w->n_tensors)
            return wfail(w, err, "%zu bytes of tensor data beyond the last tensor", n);
        const tensor_entry *t = &w->tensors[w->current];
        uint64_t room = t->nbytes - w->current_written;
        size_t k = n < room ? n : (size_t)room;
        if (put(w, p, k, err) != 0) return -1;
        p += k;
        n -= k;
        w->current_written += k;
        if (advance(w, err) != 0) return -1;
    }
    return 0;
}

static void free_writer(gguf_writer *w) {
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (int64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->meta);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

int gguf_writer_finish(gguf_writer *w, g4_error *err) {
    int rc = -1;
    if (w->failed) {
        wfail(w, err, "writer already failed");
    } else if (!w->header_written && (write_header(w, err) != 0 || advance(w, err) != 0)) {
        /* message set */
    } else if (w->current < w->n_tensors) {
        const tensor_entry *t = &w->tensors[w->current];
        wfail(w, err, "tensor '%s' has %llu of its %llu bytes (and %lld more tensors follow)", t->name,
              (unsigned long long)w->current_written, (unsigned long long)t->nbytes,
              (long long)(w->n_tensors - w->current - 1));
    } else if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0) {
        wfail(w, err, "write failed: %s", strerror(errno));
    } else {
        int closed = fclose(w->fp);
        w->fp = NULL;
        if (closed != 0) wfail(w, err, "write failed: %s", strerror(errno));
        else if (rename(w->tmp_path, w->path) != 0) wfail(w, err, "cannot rename %s into place: %s", w->tmp_path, strerror(errno));
        else rc = 0;
    }
    if (rc != 0) {
        if (w->fp) fclose(w->fp);
        unlink(w->tmp_path);
    }
    free_writer(w);
    return rc;
}

void gguf_writer_abort(gguf_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    unlink(w->tmp_path);
    free_writer(w);
}
