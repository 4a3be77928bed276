/* Python's view of JSON values, as the Jinja chat template sees them after
 * json.loads: truthiness, str() and repr(), float repr, str.strip() whitespace,
 * and Jinja's dictsort (case-insensitive key order). The template's output
 * depends on each of these, so the C renderer reproduces them exactly.
 *
 * Known approximations (documented where used): upper() and the case folding
 * of dictsort are ASCII-only; repr() escapes ASCII and Latin-1 non-printables
 * only. Tool schemas and argument keys are ASCII in practice. */
#ifndef G4_CHAT_PYSTR_H
#define G4_CHAT_PYSTR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "chat/strbuf.h"

/* Python truthiness: null, false, 0, 0.0, "", [] and {} are false. NULL (a
 * missing key, Jinja's undefined) is false too. */
bool g4_py_truthy(const json_t *v);

/* Python float repr: shortest round-trip digits, exponent form when the
 * decimal exponent is < -4 or >= 16 ("1e-05", "1e+16"), else fixed with at
 * least one fractional digit ("1.0", "0.0001"). out needs 32 bytes. */
void g4_py_float_repr(double x, char out[32]);

/* str(v) appended to b. NULL (undefined) appends nothing, null is "None",
 * booleans "True"/"False", containers use repr() of their elements. */
void g4_py_str(g4_strbuf *b, const json_t *v);

/* Python's == between two JSON values; NULL counts as None (dict.get). */
bool g4_py_equal(const json_t *a, const json_t *b);

/* The span [*start, *end) of s[0..n) without leading and trailing Python
 * whitespace (str.isspace: ASCII \t\n\v\f\r\x1c-\x1f and space, U+0085,
 * U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). */
void g4_py_strip(const char *s, size_t n, size_t *start, size_t *end);

/* Appends s[0..n) stripped as above. */
void g4_py_append_stripped(g4_strbuf *b, const char *s, size_t n);

/* Appends s[0..n) with ASCII letters upper-cased (Jinja's upper filter). */
void g4_py_append_upper(g4_strbuf *b, const char *s, size_t n);

/* The keys of obj in Jinja dictsort order: case-insensitive (ASCII folding),
 * ties keep insertion order. Returns a malloc'd array of *n pointers into
 * obj's keys (valid while obj lives), or NULL with *n = 0 when obj is empty;
 * NULL with *n = (size_t)-1 when out of memory. */
const char **g4_py_dictsort(const json_t *obj, size_t *n);

#endif
