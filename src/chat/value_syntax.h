/* Gemma 4's value syntax, used in tool declarations, tool calls and tool
 * responses:
 *
 *   strings   <|"|>raw text<|"|>     (no escaping inside the delimiters)
 *   objects   {key:value,...}        keys bare in calls/responses, <|"|>-quoted
 *                                    inside declarations; always dictsort order
 *   arrays    [a,b]
 *   scalars   true false null 15 0.5 (numbers printed as Python prints them)
 *
 * g4_value_format is the chat template's format_argument macro; g4_value_parse
 * reads what the model writes (tolerant: also JSON-quoted "strings", bare
 * words as strings) and gives JSON back. */
#ifndef G4_CHAT_VALUE_SYNTAX_H
#define G4_CHAT_VALUE_SYNTAX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "chat/strbuf.h"
#include "util/error.h"

#define G4_STRING_DELIM "<|\"|>"

/* Appends v in value syntax. quote_keys wraps object keys in <|"|> (the
 * template's escape_keys). v == NULL (a missing value, Jinja's undefined)
 * renders as "[]", as the template does. */
void g4_value_format(g4_strbuf *out, const json_t *v, bool quote_keys);

/* Parses one value at text[0..n) (leading whitespace skipped). On success
 * returns a new reference and sets *used to the bytes consumed; on failure
 * returns NULL with a message in err. Nesting deeper than 64 fails. */
json_t *g4_value_parse(const char *text, size_t n, size_t *used, g4_error *err);

/* Appends v as compact JSON, keys in insertion order, floats in their
 * shortest round-trip form (0.1, not 0.10000000000000001). */
void g4_json_append(g4_strbuf *out, const json_t *v);

/* Convenience: value syntax → compact JSON text (malloc'd), or NULL + err.
 * The whole input must be one value (surrounding whitespace allowed). */
char *g4_value_to_json(const char *text, size_t n, g4_error *err);

/* Convenience: JSON text → value syntax (malloc'd), or NULL + err. */
char *g4_value_from_json(const char *json_text, bool quote_keys, g4_error *err);

#endif
