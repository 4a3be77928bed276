/* JSON Schema to grammar, in two surface syntaxes: JSON text, and Gemma's
 * tool-call value syntax (strings in <|"|> tokens, bare keys in dictsort
 * order, no whitespace), which src/chat/value_syntax.c turns back into JSON.
 * Shared by schema.c (values, objects, arrays), schema_string.c (strings,
 * formats, patterns) and tools.c. */
#ifndef G4_GRAMMAR_SCHEMA_H
#define G4_GRAMMAR_SCHEMA_H

#include <jansson.h>

#include "grammar/grammar.h"

typedef struct schema_ref {
    const json_t *schema;
    int rule;
} schema_ref;

typedef struct schema_ctx {
    g4g_builder *b;
    const json_t *root;
    bool value_syntax;
    schema_ref *refs; /* compiled $ref targets, so recursion ends */
    int n_refs, cap_refs;
    int ws;                                             /* JSON whitespace (value syntax: none) */
    int any_value, any_string, string_char, delim_char; /* shared rules, made on first use (-1 before) */
    char path[256];                                     /* where in the schema, for errors */
} schema_ctx;

void schema_ctx_init(schema_ctx *c, g4g_builder *b, const json_t *root, bool value_syntax);
void schema_ctx_free(schema_ctx *c);
/* The rule matching exactly the instances of schema (a subset where noted
 * in docs/grammar.md), or -1 with the builder's error set. */
int schema_compile(schema_ctx *c, const json_t *schema);

/* Fails with "JSON schema[ at PATH]: " and the message; returns -1. */
int schema_fail(schema_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* schema_number.c: schema may be NULL (no bounds) */
int schema_integer(schema_ctx *c, const json_t *schema);
int schema_number(schema_ctx *c, const json_t *schema);

/* schema_string.c */
int schema_string(schema_ctx *c, const json_t *schema);
/* One JSON-encoded (or value-syntax) character of a code-point set. */
int schema_char_class(schema_ctx *c, const uint32_t *ranges, int n_ranges, bool negate);
/* A value as a literal in the surface syntax (enum, const). */
int schema_literal(schema_ctx *c, const json_t *value);

#endif
