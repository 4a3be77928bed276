/* A small pull scanner for strict JSON (RFC 8259), used to read the large
 * arrays of tokenizer.json (262k vocabulary entries, 515k merges) without
 * building a document tree: jansson takes over a second on the 33 MB file,
 * this takes a small fraction of that. Small sub-objects are handed to
 * jansson by their byte span (tj_skip). */
#ifndef G4_TOK_JSON_SCAN_H
#define G4_TOK_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_json {
    const char *p, *end, *base;
    char *buf; /* unescaped strings */
    size_t cap;
    char err[160];
} tok_json;

void tj_init(tok_json *j, const char *s, size_t n);
void tj_free(tok_json *j);

/* Skips whitespace; returns the next character, or -1 at the end. */
int tj_peek(tok_json *j);
/* Consumes the character c (after whitespace) or fails. */
int tj_expect(tok_json *j, char c);
/* Reads a string. *s points into the input when it has no escapes, else into
 * the scanner's buffer; either way it is valid until the next string read. */
int tj_string(tok_json *j, const char **s, size_t *n);
/* Reads an integer (no fraction, no exponent) within [lo, hi]. */
int tj_int(tok_json *j, int64_t lo, int64_t hi, int64_t *v);
int tj_bool(tok_json *j, int *v);
/* Consumes `null` and returns 1 if it is next, else returns 0. */
int tj_null(tok_json *j);
/* Skips one value, checking its syntax. */
int tj_skip(tok_json *j);

/* Iteration: `n` counts the members read so far (start it at 0).
 * tj_obj_next reads the key and the colon; both return 1 for a member, 0 at
 * the closing bracket, -1 on error. */
int tj_obj_next(tok_json *j, size_t *n, const char **key, size_t *key_len);
int tj_arr_next(tok_json *j, size_t *n);

/* Records an error at the current offset; returns -1. */
int tj_fail(tok_json *j, const char *what);

#endif
