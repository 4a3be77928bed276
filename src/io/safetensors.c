#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A tensor as parsed, with the file offsets kept so that overlaps can be
 * found after sorting. */
typedef struct st_entry {
    g4_tensor tensor;
    uint64_t begin, end; /* relative to the data section */
} st_entry;

struct st_file {
    const unsigned char *map; /* the whole file */
    size_t map_size;
    size_t count;
    st_entry *entries;         /* sorted by begin offset */
    const g4_tensor **by_name; /* sorted by name, for bsearch */
    size_t meta_count;
    const char **meta_keys, **meta_values;
    char *strings; /* names and metadata, copied out of the JSON document */
};

/* The safetensors spelling of each dtype. Kept here rather than derived from
 * g4_dtype_name because the tensor enum will grow block-quantised types that
 * a safetensors file can never hold. */
static const struct {
    const char *name;
    g4_dtype dtype;
} st_dtypes[] = {
    {"F64", G4_DTYPE_F64},   {"F32", G4_DTYPE_F32},
    {"F16", G4_DTYPE_F16},   {"BF16", G4_DTYPE_BF16},
    {"I64", G4_DTYPE_I64},   {"I32", G4_DTYPE_I32},
    {"I16", G4_DTYPE_I16},   {"I8", G4_DTYPE_I8},
    {"U8", G4_DTYPE_U8},     {"BOOL", G4_DTYPE_BOOL},
    {"F8_E4M3", G4_DTYPE_F8_E4M3}, {"F8_E5M2", G4_DTYPE_F8_E5M2},
};

static int dtype_from_name(const char *s, g4_dtype *out) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = st_dtypes[i].dtype;
            return 0;
        }
    }
    return -1;
}

static const char METADATA_KEY[] = "__metadata__";

/* Copies a string into the arena sized in advance by count_strings. */
static const char *arena_copy(char **cursor, const char *s) {
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

/* Reads a JSON integer that must be >= 0 (dims and offsets). */
static int get_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Fills e from one header entry; all checks that need only this entry. */
static int parse_entry(const char *path, const char *name, const json_t *v,
                       const unsigned char *data, uint64_t data_size,
                       st_entry *e, g4_error *err) {
    if (!json_is_object(v))
        return g4_fail(err, "%s: tensor '%s': entry is not an object", path, name);

    const json_t *jdtype = json_object_get(v, "dtype");
    if (!json_is_string(jdtype))
        return g4_fail(err, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    const char *dtype_name = json_string_value(jdtype);
    if (dtype_from_name(dtype_name, &e->tensor.dtype) != 0)
        return g4_fail(err, "%s: tensor '%s': unknown dtype \"%.32s\"", path, name,
                       dtype_name);
    size_t elem_size = g4_dtype_size(e->tensor.dtype);

    const json_t *jshape = json_object_get(v, "shape");
    if (!json_is_array(jshape))
        return g4_fail(err, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    size_t ndim = json_array_size(jshape);
    if (ndim > G4_MAX_DIMS)
        return g4_fail(err, "%s: tensor '%s': %zu dims, more than the %d supported",
                       path, name, ndim, G4_MAX_DIMS);
    int64_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        const json_t *jdim = json_array_get(jshape, d);
        if (!json_is_integer(jdim))
            return g4_fail(err, "%s: tensor '%s': shape[%zu] is not an integer",
                           path, name, d);
        json_int_t dim = json_integer_value(jdim);
        if (dim < 0)
            return g4_fail(err, "%s: tensor '%s': shape[%zu] is negative (%lld)",
                           path, name, d, (long long)dim);
        if (__builtin_mul_overflow(numel, (int64_t)dim, &numel))
            return g4_fail(err, "%s: tensor '%s': element count overflows", path, name);
        e->tensor.shape[d] = dim;
    }
    e->tensor.ndim = (int)ndim;
    e->tensor.numel = numel;
    uint64_t nbytes;
    if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)elem_size, &nbytes))
        return g4_fail(err, "%s: tensor '%s': byte size overflows", path, name);

    const json_t *joff = json_object_get(v, "data_offsets");
    if (!json_is_array(joff) || json_array_size(joff) != 2 ||
        get_uint(json_array_get(joff, 0), &e->begin) != 0 ||
        get_uint(json_array_get(joff, 1), &e->end) != 0)
        return g4_fail(err, "%s: tensor '%s': \"data_offsets\" must be [begin, end] "
                       "with non-negative integers", path, name);
    if (e->begin > e->end)
        return g4_fail(err, "%s: tensor '%s': data_offsets begin %llu > end %llu", path,
                       name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return g4_fail(err, "%s: tensor '%s': data_offsets end %llu out of bounds "
                       "(data section is %llu bytes)", path, name,
                       (unsigned long long)e->end, (unsigned long long)data_size);
    if (e->end - e->begin != nbytes)
        return g4_fail(err, "%s: tensor '%s': %llu data bytes do not match shape x "
                       "%s (%llu bytes)", path, name,
                       (unsigned long long)(e->end - e->begin),
                       g4_dtype_name(e->tensor.dtype), (unsigned long long)nbytes);
    /* The map is page-aligned, so this checks the file offset and the address
     * at once; ops cast these pointers to typed arrays. */
    const unsigned char *p = data + e->begin;
    if ((uintptr_t)p % elem_size != 0)
        return g4_fail(err, "%s: tensor '%s': data at offset %llu is unaligned for %s",
                       path, name, (unsigned long long)e->begin,
                       g4_dtype_name(e->tensor.dtype));
    e->tensor.data = p;
    e->tensor.nbytes = (size_t)nbytes;
    return 0;
}

static int cmp_entry_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int cmp_tensor_name(const void *a, const void *b) {
    const g4_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_key_tensor(const void *key, const void *elem) {
    const g4_tensor *const *t = elem;
    return strcmp(key, (*t)->name);
}

static int parse_metadata(const char *path, const json_t *meta, st_file *f,
                          char **cursor, g4_error *err) {
    if (!json_is_object(meta))
        return g4_fail(err, "%s: __metadata__ is not an object", path);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return g4_fail(err, "%s: out of memory", path);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (!json_is_string(v))
            return g4_fail(err, "%s: __metadata__ value for '%s' is not a string", path,
                           key);
        f->meta_keys[f->meta_count] = arena_copy(cursor, key);
        f->meta_values[f->meta_count] = arena_copy(cursor, json_string_value(v));
        f->meta_count++;
    }
    return 0;
}

/* Bytes needed to copy every name and metadata string out of the document. */
static size_t count_strings(const json_t *root) {
    size_t total = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        total += strlen(key) + 1;
        if (strcmp(key, METADATA_KEY) == 0 && json_is_object(v)) {
            const char *mkey;
            json_t *mv;
            json_object_foreach(v, mkey, mv) {
                total += strlen(mkey) + 1;
                if (json_is_string(mv))
                    total += json_string_length(mv) + 1;
            }
        }
    }
    return total;
}

static int parse_header(const char *path, const json_t *root, st_file *f,
                        const unsigned char *data, uint64_t data_size, g4_error *err) {
    if (!json_is_object(root))
        return g4_fail(err, "%s: header is not a JSON object", path);

    f->strings = malloc(count_strings(root) + 1);
    size_t n = json_object_size(root);
    f->entries = calloc(n ? n : 1, sizeof *f->entries);
    if (!f->strings || !f->entries)
        return g4_fail(err, "%s: out of memory", path);
    char *cursor = f->strings;

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        if (strcmp(key, METADATA_KEY) == 0) {
            if (parse_metadata(path, v, f, &cursor, err) != 0)
                return -1;
            continue;
        }
        st_entry *e = &f->entries[f->count];
        if (parse_entry(path, key, v, data, data_size, e, err) != 0)
            return -1;
        e->tensor.name = arena_copy(&cursor, key);
        f->count++;
    }

    /* After sorting by begin, a non-empty tensor overlaps an earlier one iff it
     * starts before the furthest end seen so far. Empty tensors own no bytes. */
    qsort(f->entries, f->count, sizeof *f->entries, cmp_entry_offset);
    const st_entry *furthest = NULL;
    for (size_t i = 0; i < f->count; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin == e->end)
            continue;
        if (furthest && e->begin < furthest->end)
            return g4_fail(err, "%s: tensor '%s' overlaps tensor '%s'", path,
                           e->tensor.name, furthest->tensor.name);
        if (!furthest || e->end > furthest->end)
            furthest = e;
    }

    f->by_name = calloc(f->count ? f->count : 1, sizeof *f->by_name);
    if (!f->by_name)
        return g4_fail(err, "%s: out of memory", path);
    for (size_t i = 0; i < f->count; i++)
        f->by_name[i] = &f->entries[i].tensor;
    qsort(f->by_name, f->count, sizeof *f->by_name, cmp_tensor_name);
    /* jansson already rejects duplicate keys; this guards the bsearch. */
    for (size_t i = 1; i < f->count; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return g4_fail(err, "%s: duplicate tensor name '%s'", path,
                           f->by_name[i]->name);
    return 0;
}

/* Maps the file; fills f->map/map_size. */
static int map_file(const char *path, st_file *f, g4_error *err) {
    /* O_NONBLOCK so that a FIFO given by mistake fails below instead of
     * hanging in open(); it has no effect on regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return g4_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return g4_fail(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return g4_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return g4_fail(err, "%s: truncated: %lld bytes, too short for the 8-byte "
                       "header length", path, (long long)st.st_size);
    }
    /* A shared read-only map: pages come from the page cache and are never
     * copied. If the file is truncated while mapped, reads fault (SIGBUS);
     * that cannot be checked for up front. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return g4_fail(err, "%s: mmap failed: %s", path, strerror(e));
    f->map = map;
    f->map_size = (size_t)st.st_size;
    return 0;
}

int st_open(const char *path, st_file **out, g4_error *err) {
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f)
        return g4_fail(err, "%s: out of memory", path);
    if (map_file(path, f, err) != 0)
        goto fail;

    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | f->map[i];
    if (header_len == 0) {
        g4_fail(err, "%s: header length is 0", path);
        goto fail;
    }
    if (header_len > ST_MAX_HEADER_BYTES) {
        g4_fail(err, "%s: header length %llu exceeds the %zu MiB limit", path,
                (unsigned long long)header_len, ST_MAX_HEADER_BYTES >> 20);
        goto fail;
    }
    if (header_len > f->map_size - 8) {
        g4_fail(err, "%s: truncated: header length %llu runs past the end of the "
                "file (%zu bytes)", path, (unsigned long long)header_len, f->map_size);
        goto fail;
    }

    /* DECODE_ANY so that a scalar header gets the clearer "not a JSON object". */
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->map + 8, (size_t)header_len,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            g4_fail(err, "%s: duplicate key in header: %s", path, jerr.text);
        else
            g4_fail(err, "%s: header is not valid JSON: %s (at byte %d)", path,
                    jerr.text, jerr.position);
        goto fail;
    }
    const unsigned char *data = f->map + 8 + header_len;
    int rc = parse_header(path, root, f, data, f->map_size - 8 - header_len, err);
    json_decref(root);
    if (rc != 0)
        goto fail;
    *out = f;
    return 0;

fail:
    st_close(f);
    return -1;
}

void st_close(st_file *f) {
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_size);
    free(f->entries);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->strings);
    free(f);
}

size_t st_count(const st_file *f) { return f->count; }

const g4_tensor *st_tensor(const st_file *f, size_t i) {
    return i < f->count ? &f->entries[i].tensor : NULL;
}

const g4_tensor *st_find(const st_file *f, const char *name) {
    if (f->count == 0)
        return NULL;
    const g4_tensor *const *hit =
        bsearch(name, f->by_name, f->count, sizeof *f->by_name, cmp_key_tensor);
    return hit ? *hit : NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}
