/* The small pipeline sections of tokenizer.json (normalizer, pre_tokenizer,
 * decoder), read with jansson from their byte spans. Only the parts whose
 * HF semantics this tokenizer reproduces exactly are accepted: string
 * Replace normalizers, a string Split pre-tokenizer, and the Replace /
 * ByteFallback / Fuse / Strip decoders. A NULL span (section absent) or
 * `null` means no such stage. */
#ifndef G4_TOK_PIPELINE_JSON_H
#define G4_TOK_PIPELINE_JSON_H

#include <stddef.h>

#include "tok/tokenizer.h"

int tok_parse_normalizer(g4_tokenizer *t, const char *json, size_t len, g4_error *err);
int tok_parse_pre_tokenizer(g4_tokenizer *t, const char *json, size_t len, g4_error *err);
int tok_parse_decoder(g4_tokenizer *t, const char *json, size_t len, g4_error *err);

#endif
