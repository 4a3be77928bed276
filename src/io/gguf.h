/* GGUF, llama.cpp's model file format: a reader (gguf.c) that memory-maps a
 * file read-only and hands out views into the map (tensor data and numeric
 * metadata are never copied), and a streaming writer (gguf_write.c).
 *
 * Layout (versions 2 and 3 are identical; everything little-endian):
 *   "GGUF", u32 version, u64 tensor count, u64 key-value count
 *   per key-value:  string key, u32 value type, value
 *   per tensor:     string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                   u64 offset (into the data section)
 *   padding to the alignment (key general.alignment, u32, default 32)
 *   data section (starts aligned; each tensor's offset is a multiple of
 *   the alignment)
 * where a string is a u64 byte length and the bytes (no terminator), and an
 * array value is a u32 element type, a u64 count and the elements.
 *
 * Shapes. GGUF stores a tensor's dims innermost first: ne[0] is the length of
 * a contiguous row (ggml's convention). g4_tensor.shape is outermost first
 * (PyTorch order), so shape[i] = ne[ndim - 1 - i]: a GGUF matrix with
 * ne = {n_embd, n_vocab} is the [n_vocab, n_embd] tensor with rows of
 * n_embd, exactly how nn.Linear weights and embeddings are laid out. ndim
 * is the file's n_dims (0 to 4); ggml's writer drops trailing dims of 1, so
 * a {n_embd, 1} matrix arrives as 1-D [n_embd]. The GGUF-side view (ne
 * padded with 1s to 4, ggml type number, offset) is gguf_tensor_ggml().
 *
 * Every field is validated, since files come from users: magic, version,
 * truncation anywhere, counts and lengths bounded by the file size, unknown
 * value types, nested arrays, empty or duplicate keys and names, n_dims > 4,
 * negative or overflowing shapes, rows that are not whole blocks, unsupported
 * ggml types (named in the message), general.alignment not a u32 power of
 * two, offsets unaligned or past the end, overlapping tensors, tensor data
 * unaligned for its type. */
#ifndef G4_IO_GGUF_H
#define G4_IO_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"
#include "util/error.h"

/* llama.cpp's libggml-base exports gguf_find_key and gguf_find_tensor with
 * other signatures. Ours link under g4_ names, so that a program linking
 * both cannot have one library's calls bound to the other's function. */
#define gguf_find_key g4_gguf_find_key
#define gguf_find_tensor g4_gguf_find_tensor

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* ggml keeps names in a 64-byte buffer; the writer refuses longer ones so
 * llama.cpp can load what we write. The reader takes any length. */
#define GGUF_MAX_TENSOR_NAME 63

/* Metadata value types, numbered as in the file. */
typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

/* "u8", "i32", "f32", "bool", "string", "array", ...; "unknown" otherwise. */
const char *gguf_type_label(gguf_type t);
/* Bytes of one value of a fixed-size type; 0 for STRING, ARRAY, unknown. */
size_t gguf_type_bytes(gguf_type t);

/* ggml's tensor type numbers (enum ggml_type) against g4_dtype. The name is
 * ggml's (e.g. "Q4_K", "IQ4_XS"; "unknown" for numbers ggml never used). */
const char *gguf_ggml_type_name(uint32_t ggml_type);
/* -1 if this engine cannot hold the type. */
int gguf_dtype_from_ggml(uint32_t ggml_type, g4_dtype *out);
/* -1 if GGUF has no such type (U8, BOOL, F8). */
int gguf_dtype_to_ggml(g4_dtype t, uint32_t *out);

/* An array value. Numeric and bool elements are a copy aligned for their
 * type in native layout (bools as bytes 0 or 1), readable as e.g.
 * (const float *)data. String elements: strs[i] is NUL-terminated and
 * lens[i] its length in bytes (a GGUF string may contain NUL bytes). */
typedef struct gguf_array {
    gguf_type type; /* element type, never ARRAY */
    uint64_t n;
    const void *data;         /* numeric and bool */
    const char *const *strs;  /* STRING */
    const uint64_t *lens;     /* STRING */
} gguf_array;

typedef struct gguf_value {
    gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
        bool b;
    } v;                /* scalars */
    const char *str;    /* STRING: NUL-terminated */
    uint64_t str_len;   /* STRING: length in bytes */
    gguf_array arr;     /* ARRAY */
} gguf_value;

/* The GGUF view of one tensor. */
typedef struct gguf_tensor_info {
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* innermost first; 1 beyond n_dims */
    uint32_t ggml_type;
    uint64_t offset;           /* into the data section */
} gguf_tensor_info;

typedef struct gguf_file gguf_file;

/* ---- reading ---- */

/* Returns 0 and *out, or -1 with a one-line message naming the file. All
 * pointers handed out stay valid until gguf_close. */
int gguf_open(const char *path, gguf_file **out, g4_error *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* file offset of the data section */

/* Metadata in file order; ids are 0 .. gguf_n_kv - 1. */
int64_t gguf_n_kv(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, int64_t id);
const gguf_value *gguf_kv_value(const gguf_file *f, int64_t id);
/* The id of key, or -1 if absent. O(log n). */
int64_t gguf_find_key(const gguf_file *f, const char *key);

/* Typed access by key: -1 with a message if the key is missing or holds
 * another type (no conversions: a u32 key is not an i32). */
int gguf_get_u8(const gguf_file *f, const char *key, uint8_t *out, g4_error *err);
int gguf_get_i8(const gguf_file *f, const char *key, int8_t *out, g4_error *err);
int gguf_get_u16(const gguf_file *f, const char *key, uint16_t *out, g4_error *err);
int gguf_get_i16(const gguf_file *f, const char *key, int16_t *out, g4_error *err);
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, g4_error *err);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, g4_error *err);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, g4_error *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, g4_error *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, g4_error *err);
int gguf_get_f64(const gguf_file *f, const char *key, double *out, g4_error *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, g4_error *err);
/* *len may be NULL. */
int gguf_get_str(const gguf_file *f, const char *key, const char **out, uint64_t *len, g4_error *err);
/* An array whose elements are of type elem (GGUF_TYPE_COUNT: any type). */
int gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, gguf_array *out, g4_error *err);

/* Tensors in file (tensor-info) order; NULL out of range. */
int64_t gguf_n_tensors(const gguf_file *f);
const g4_tensor *gguf_tensor(const gguf_file *f, int64_t i);
const gguf_tensor_info *gguf_tensor_ggml(const gguf_file *f, int64_t i);
/* NULL if no tensor has that name. O(log n). */
const g4_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- writing (gguf_write.c) ----
 *
 * Streaming, for converters: add the metadata and the tensor infos (any
 * order, before any data), then append every tensor's bytes in the order
 * the tensors were added, in as many gguf_writer_write calls as convenient
 * (a call may span tensors). The header goes out with the first data; each
 * tensor starts aligned (general.alignment if set as a u32, else 32) and is
 * padded with zeros, as ggml writes. Nothing appears at the path until
 * gguf_writer_finish: the file is written under a temporary name next to it
 * and renamed. Produces version 3. Every function returns 0, or -1 with a
 * message; after a failure only gguf_writer_abort is useful. */

typedef struct gguf_writer gguf_writer;

int gguf_writer_open(const char *path, gguf_writer **out, g4_error *err);

int gguf_writer_add_u8(gguf_writer *w, const char *key, uint8_t v, g4_error *err);
int gguf_writer_add_i8(gguf_writer *w, const char *key, int8_t v, g4_error *err);
int gguf_writer_add_u16(gguf_writer *w, const char *key, uint16_t v, g4_error *err);
int gguf_writer_add_i16(gguf_writer *w, const char *key, int16_t v, g4_error *err);
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v, g4_error *err);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v, g4_error *err);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v, g4_error *err);
int gguf_writer_add_i64(gguf_writer *w, const char *key, int64_t v, g4_error *err);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v, g4_error *err);
int gguf_writer_add_f64(gguf_writer *w, const char *key, double v, g4_error *err);
int gguf_writer_add_bool(gguf_writer *w, const char *key, bool v, g4_error *err);
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s, g4_error *err);
/* n elements of a fixed-size type elem, packed in native layout (bools one
 * byte each, any non-zero byte true). */
int gguf_writer_add_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data, uint64_t n,
                        g4_error *err);
int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                            g4_error *err);

/* shape outermost first (PyTorch order), ndim 0 to 4; the innermost dim must
 * be a whole number of dtype's blocks. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, g4_dtype dtype, int ndim,
                           const int64_t *shape, g4_error *err);

/* Appends n bytes of tensor data. */
int gguf_writer_write(gguf_writer *w, const void *data, size_t n, g4_error *err);

/* Checks that every tensor got all its bytes, flushes, syncs and renames
 * the file into place. Frees w whatever the outcome. */
int gguf_writer_finish(gguf_writer *w, g4_error *err);
/* Drops the temporary file and frees w (NULL is fine). */
void gguf_writer_abort(gguf_writer *w);

#endif
