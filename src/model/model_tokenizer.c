/* Loading the tokenizer that comes with a model: tokenizer.json next to
 * config.json, or the tokenizer.ggml.* keys of a GGUF file. */
#include "model/model_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int from_dir(const char *dir, g4_tokenizer **out, g4_error *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= (int)sizeof path) return g4_fail(err, "%s: path too long", dir);
    if (access(path, F_OK) != 0) return 0; /* no tokenizer: the model runs on ids */
    return g4_tok_load(path, out, err);
}

/* GGUF string arrays carry u64 lengths; the tokenizer takes size_t. */
static size_t *lengths(const gguf_array *a) {
    size_t *lens = malloc(sizeof *lens * (a->n ? a->n : 1));
    for (uint64_t i = 0; lens && i < a->n; i++) lens[i] = (size_t)a->lens[i];
    return lens;
}

static int from_gguf(const gguf_file *f, g4_tokenizer **out, g4_error *err) {
    const char *model;
    if (gguf_find_key(f, "tokenizer.ggml.model") < 0) return 0;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, NULL, err)) return -1;
    if (!strcmp(model, "none") || !strcmp(model, "no_vocab")) return 0;
    /* "gemma4" is llama.cpp's name; Ollama writes Gemma 4 as "llama" with
     * merges, and Gemma 3 GGUFs are "llama" with scores only: one pipeline
     * (U+2581 for spaces, byte fallback), merges if present, else scores. */
    if (strcmp(model, "gemma4") && strcmp(model, "llama"))
        return g4_fail(err, "GGUF: tokenizer.ggml.model \"%s\" is not supported (gemma4, llama or none)", model);

    gguf_array tokens, types, merges = {0}, scores = {0};
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, err) ||
        gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types, err))
        return -1;
    if (types.n != tokens.n) return g4_fail(err, "GGUF: tokenizer.ggml.token_type has %llu entries for %llu tokens", (unsigned long long)types.n, (unsigned long long)tokens.n);
    if (tokens.n == 0 || tokens.n > (1u << 24)) return g4_fail(err, "GGUF: tokenizer.ggml.tokens has %llu entries", (unsigned long long)tokens.n);
    if (gguf_find_key(f, "tokenizer.ggml.merges") >= 0) {
        if (gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, err)) return -1;
    } else {
        if (gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, err)) return -1;
        if (scores.n != tokens.n) return g4_fail(err, "GGUF: tokenizer.ggml.scores has %llu entries for %llu tokens", (unsigned long long)scores.n, (unsigned long long)tokens.n);
    }
    int32_t unk = -1;
    if (gguf_find_key(f, "tokenizer.ggml.unknown_token_id") >= 0) {
        uint32_t u;
        if (gguf_get_u32(f, "tokenizer.ggml.unknown_token_id", &u, err)) return -1;
        if (u >= tokens.n) return g4_fail(err, "GGUF: tokenizer.ggml.unknown_token_id %u is not a token", u);
        unk = (int32_t)u;
    }
    size_t *token_lens = lengths(&tokens), *merge_lens = merges.n ? lengths(&merges) : NULL;
    int rc;
    if (!token_lens || (merges.n && !merge_lens)) {
        rc = g4_fail(err, "out of memory");
    } else {
        g4_tok_arrays a = {
            .n_tokens = (size_t)tokens.n, .tokens = tokens.strs, .token_lens = token_lens,
            .token_types = types.data, .n_merges = (size_t)merges.n, .merges = merges.strs, .merge_lens = merge_lens,
            .scores = scores.data, .escape_whitespace = 1, .byte_fallback = 1, .unk_id = unk,
        };
        rc = g4_tok_from_arrays(&a, out, err);
    }
    free(token_lens);
    free(merge_lens);
    return rc;
}

int g4_model_tokenizer_load(const char *dir, const gguf_file *gguf, g4_tokenizer **out, g4_error *err) {
    *out = NULL;
    return gguf ? from_gguf(gguf, out, err) : from_dir(dir, out, err);
}
