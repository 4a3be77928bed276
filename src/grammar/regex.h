/* JSON Schema "pattern" (ECMAScript regular expressions, the common subset)
 * to a grammar rule over a string's characters. */
#ifndef G4_GRAMMAR_REGEX_H
#define G4_GRAMMAR_REGEX_H

#include "grammar/schema.h"

/* The rule matching the characters of every string the pattern accepts
 * (search semantics: without ^ or $ any text may come before or after).
 * Supported: literals, ., classes [...] [^...] with ranges, \d \w \s \D \W \S
 * and escaped characters, groups (...) (?:...), alternation |, quantifiers
 * * + ? {n} {n,} {n,m} (lazy forms too), ^ at the start and $ at the end.
 * Anything else (lookaround, backreferences, flags) is an error. */
int regex_compile(schema_ctx *c, const char *pattern);

#endif
