/* The tokenizer keys of a GGUF file, as llama.cpp's convert_hf_to_gguf.py
 * writes them for Gemma 4 (Gemma4Model.set_vocab over gguf-py's
 * LlamaHfVocab and SpecialVocab): every token with a placeholder score of
 * -1000, token types, the merges of tokenizer.json as "left right" strings,
 * the special-token ids, add_bos_token true, add_space_prefix false, and the
 * chat template. */
#include "model/model_tokenizer.h"

#include "tok/json_scan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp forces these to USER_DEFINED so that detokenizing renders them
 * and the chat parser can see them; other special tokens stay CONTROL. */
static const char *const visible_markers[] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>",
};

/* NUL-terminated strings back to back, for gguf_writer_add_arr_str. */
typedef struct str_list {
    char *pool;
    size_t len, cap;
    size_t *off;
    size_t n, cap_n;
} str_list;

static int list_add(str_list *l, const char *s, size_t n) {
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 1 << 20;
        while (l->len + n + 1 > cap) cap *= 2;
        char *p = realloc(l->pool, cap);
        if (!p) return -1;
        l->pool = p;
        l->cap = cap;
    }
    if (l->n == l->cap_n) {
        size_t cap = l->cap_n ? 2 * l->cap_n : 1024;
        size_t *p = realloc(l->off, cap * sizeof *p);
        if (!p) return -1;
        l->off = p;
        l->cap_n = cap;
    }
    l->off[l->n++] = l->len;
    memcpy(l->pool + l->len, s, n);
    l->pool[l->len + n] = 0;
    l->len += n + 1;
    return 0;
}

static void list_free(str_list *l) {
    free(l->pool);
    free(l->off);
}

static int list_write(gguf_writer *w, const char *key, const str_list *l, g4_error *err) {
    const char **strs = malloc(sizeof *strs * (l->n ? l->n : 1));
    if (!strs) return g4_fail(err, "out of memory");
    for (size_t i = 0; i < l->n; i++) strs[i] = l->pool + l->off[i];
    int rc = gguf_writer_add_arr_str(w, key, strs, l->n, err);
    free(strs);
    return rc;
}

static char *read_file(const char *path, size_t *n, g4_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return g4_fail(err, "%s: cannot open", path), NULL;
    char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
        fread(buf, 1, (size_t)size, f) == (size_t)size) {
        buf[size] = 0;
        *n = (size_t)size;
    } else {
        free(buf);
        buf = NULL;
        g4_fail(err, "%s: cannot read", path);
    }
    fclose(f);
    return buf;
}

/* A file that may be absent: *text NULL then. */
static int read_optional(const char *path, char **text, g4_error *err) {
    size_t n;
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return (*text = read_file(path, &n, err)) ? 0 : -1;
}

static int key_is(const char *k, size_t n, const char *want) { return strlen(want) == n && !memcmp(k, want, n); }

/* One merge: "a b" as stored, or a ["a", "b"] pair joined the way gguf-py
 * joins it (a space inside a part becomes U+0120, as in its writer). */
static int read_merge(tok_json *j, str_list *out) {
    const char *s;
    size_t n;
    if (tj_peek(j) == '"') {
        if (tj_string(j, &s, &n)) return -1;
        return list_add(out, s, n) ? tj_fail(j, "out of memory") : 0;
    }
    char joined[1024];
    size_t len = 0, k = 0;
    if (tj_expect(j, '[')) return -1;
    while (tj_arr_next(j, &k) == 1) {
        if (k > 2 || tj_string(j, &s, &n)) return tj_fail(j, "a merge must be \"a b\" or [\"a\", \"b\"]");
        if (k == 2) joined[len++] = ' ';
        for (size_t i = 0; i < n; i++) {
            if (len + 3 > sizeof joined) return tj_fail(j, "merge too long");
            if (s[i] == ' ') { joined[len++] = '\xc4'; joined[len++] = '\xa0'; }
            else joined[len++] = s[i];
        }
    }
    if (j->err[0] || k != 2) return tj_fail(j, "a merge must be \"a b\" or [\"a\", \"b\"]");
    return list_add(out, joined, len) ? tj_fail(j, "out of memory") : 0;
}

/* added_tokens[]: which ids are added tokens, and whether special. */
typedef struct added_list {
    struct { int32_t id; int special; } *item;
    size_t n, cap;
} added_list;

static int read_added(tok_json *j, added_list *out) {
    size_t k = 0, m;
    const char *key;
    size_t key_len;
    int rc = tj_expect(j, '[');
    while (!rc && (rc = tj_arr_next(j, &k)) == 1) {
        int64_t id = -1;
        int special = 0;
        m = 0;
        rc = tj_expect(j, '{');
        while (!rc && (rc = tj_obj_next(j, &m, &key, &key_len)) == 1) {
            if (key_is(key, key_len, "id")) rc = tj_int(j, 0, INT32_MAX, &id);
            else if (key_is(key, key_len, "special")) rc = tj_bool(j, &special);
            else rc = tj_skip(j);
        }
        if (rc || id < 0) return tj_fail(j, "an added token needs an id");
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 64;
            void *p = realloc(out->item, cap * sizeof *out->item);
            if (!p) return tj_fail(j, "out of memory");
            out->item = p;
            out->cap = cap;
        }
        out->item[out->n].id = (int32_t)id;
        out->item[out->n++].special = special;
    }
    return rc;
}

/* From a tokenizer.json: model.merges in rank order, and added_tokens. */
static int read_json_parts(const char *path, str_list *merges, added_list *added, g4_error *err) {
    size_t n;
    char *text = read_file(path, &n, err);
    if (!text) return -1;
    tok_json j;
    tj_init(&j, text, n);
    size_t top = 0, in_model = 0, k = 0;
    const char *key;
    size_t key_len;
    int rc = tj_expect(&j, '{'), found = 0;
    while (!rc && (rc = tj_obj_next(&j, &top, &key, &key_len)) == 1) {
        rc = 0;
        if (key_is(key, key_len, "added_tokens")) { rc = read_added(&j, added); continue; }
        if (!key_is(key, key_len, "model")) { rc = tj_skip(&j); continue; }
        rc = tj_expect(&j, '{');
        while (!rc && (rc = tj_obj_next(&j, &in_model, &key, &key_len)) == 1) {
            rc = 0;
            if (!key_is(key, key_len, "merges")) { rc = tj_skip(&j); continue; }
            found = 1;
            rc = tj_expect(&j, '[');
            while (!rc && (rc = tj_arr_next(&j, &k)) == 1) rc = read_merge(&j, merges);
        }
    }
    if (rc) g4_fail(err, "%s: %s", path, j.err[0] ? j.err : "invalid JSON");
    else if (!found) rc = g4_fail(err, "%s: no model.merges (a BPE tokenizer.json is needed)", path);
    tj_free(&j);
    free(text);
    return rc;
}

static int is_byte_token(const char *s, size_t n) {
    static const char hex[] = "0123456789abcdefABCDEF";
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && s[3] && s[4] && strchr(hex, s[3]) && strchr(hex, s[4]);
}

/* kind[id]: 0 not added, 1 added, 2 added and special. */
static int32_t token_type(const uint8_t *kind, int32_t id, const char *s, size_t n) {
    for (size_t i = 0; i < sizeof visible_markers / sizeof *visible_markers; i++)
        if (key_is(s, n, visible_markers[i])) return G4_TOK_TYPE_USER_DEFINED;
    if (is_byte_token(s, n)) return G4_TOK_TYPE_BYTE;
    /* Special added tokens are CONTROL (matched in text only when parsing
     * specials). Added tokens not marked special, which Hugging Face
     * matches in any text, are USER_DEFINED, which llama.cpp and our
     * GGUF loader match in any text too. (gguf-py makes such a token
     * NORMAL when it is inside the base vocabulary; Gemma 4 marks all its
     * added tokens special, so its files are the same either way.) */
    return kind[id] == 2 ? G4_TOK_TYPE_CONTROL : kind[id] == 1 ? G4_TOK_TYPE_USER_DEFINED : G4_TOK_TYPE_NORMAL;
}

/* tokens, scores, token_type: exactly vocab_size entries. */
static int write_tokens(const g4_tokenizer *tok, const added_list *added, int vocab_size, gguf_writer *w, g4_error *err) {
    int32_t n_tok = g4_tok_n_vocab(tok);
    uint8_t *kind = calloc((size_t)(n_tok > vocab_size ? n_tok : vocab_size), 1);
    if (!kind) return g4_fail(err, "out of memory");
    for (size_t i = 0; i < added->n; i++)
        if (added->item[i].id < n_tok) kind[added->item[i].id] = added->item[i].special ? 2 : 1;
    for (int32_t id = vocab_size; id < n_tok; id++)
        if (g4_tok_token_text(tok, id, NULL) && !g4_tok_is_special(tok, id)) {
            free(kind);
            return g4_fail(err, "the tokenizer has %d tokens, more than the model's vocabulary of %d", (int)n_tok, vocab_size);
        }
    str_list texts = {0};
    float *scores = malloc(sizeof *scores * (size_t)vocab_size);
    int32_t *types = malloc(sizeof *types * (size_t)vocab_size);
    int rc = scores && types ? 0 : g4_fail(err, "out of memory");
    for (int32_t id = 0; !rc && id < vocab_size; id++) {
        size_t n = 0;
        const char *s = id < n_tok ? g4_tok_token_text(tok, id, &n) : NULL;
        char pad[32];
        scores[id] = -1000.0f;
        if (s) {
            types[id] = token_type(kind, id, s, n);
        } else { /* a hole in the vocabulary: llama.cpp's filler */
            n = (size_t)snprintf(pad, sizeof pad, "[PAD%d]", (int)id);
            s = pad;
            types[id] = G4_TOK_TYPE_UNUSED;
        }
        if (memchr(s, 0, n)) rc = g4_fail(err, "token %d contains a NUL byte", (int)id);
        else if (list_add(&texts, s, n)) rc = g4_fail(err, "out of memory");
    }
    if (!rc) rc = gguf_writer_add_str(w, "tokenizer.ggml.model", "gemma4", err) ||
                  list_write(w, "tokenizer.ggml.tokens", &texts, err) ||
                  gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)vocab_size, err) ||
                  gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)vocab_size, err);
    list_free(&texts);
    free(scores);
    free(types);
    free(kind);
    return rc;
}

/* The id of a special token named in tokenizer_config.json (a string or
 * {"content": ...}), or -1. */
static int32_t config_token(const g4_tokenizer *tok, const json_t *config, const char *key) {
    const json_t *v = json_object_get(config, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? g4_tok_token_id(tok, json_string_value(v)) : -1;
}

/* The special-token ids (SpecialVocab: tokenizer_config.json first, then
 * the model's config), add_bos/add_eos, and the chat template. */
static int write_specials(const g4_tokenizer_source *src, const g4_tokenizer *tok, gguf_writer *w, g4_error *err) {
    json_t *config = NULL;
    char path[4096];
    if (src->config_dir) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", src->config_dir);
        char *text;
        json_error_t jerr;
        if (read_optional(path, &text, err)) return -1;
        if (text && !(config = json_loads(text, 0, &jerr))) {
            free(text);
            return g4_fail(err, "%s: %s", path, jerr.text);
        }
        free(text);
    }
    const struct { const char *name, *key, *text; int fallback; } specials[] = {
        {"bos", "tokenizer.ggml.bos_token_id", "<bos>", src->cfg->bos_token_id},
        {"eos", "tokenizer.ggml.eos_token_id", "<eos>", src->cfg->n_eos_token_ids ? src->cfg->eos_token_ids[0] : -1},
        {"unk", "tokenizer.ggml.unknown_token_id", "<unk>", -1},
        {"pad", "tokenizer.ggml.padding_token_id", "<pad>", src->cfg->pad_token_id},
        {"mask", "tokenizer.ggml.mask_token_id", "<mask>", -1},
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof specials / sizeof *specials; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", specials[i].name);
        int32_t id = config_token(tok, config, key);
        if (id < 0) id = specials[i].fallback;
        if (id < 0) id = g4_tok_token_id(tok, specials[i].text);
        if (id >= 0 && id < src->cfg->vocab_size) rc = gguf_writer_add_u32(w, specials[i].key, (uint32_t)id, err);
    }
    const json_t *add_eos = json_object_get(config, "add_eos_token");
    if (!rc && json_is_boolean(add_eos)) rc = gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", json_is_true(add_eos), err);
    if (!rc) rc = gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, err) ||
                  gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", false, err);

    /* the chat template: tokenizer_config.json's, else chat_template.jinja */
    const json_t *tmpl = json_object_get(config, "chat_template");
    char *jinja = NULL;
    if (!rc && !json_is_string(tmpl) && src->config_dir) {
        snprintf(path, sizeof path, "%s/chat_template.jinja", src->config_dir);
        rc = read_optional(path, &jinja, err);
    }
    if (!rc && !json_is_string(tmpl) && !jinja && src->chat_template_path)
        rc = read_optional(src->chat_template_path, &jinja, err);
    const char *text = json_is_string(tmpl) ? json_string_value(tmpl) : jinja;
    if (!rc && text) rc = gguf_writer_add_str(w, "tokenizer.chat_template", text, err);
    free(jinja);
    json_decref(config);
    return rc;
}

int g4_tokenizer_gguf_write(void *ctx, gguf_writer *w, g4_error *err) {
    const g4_tokenizer_source *src = ctx;
    if (!src->tokenizer_json) return gguf_writer_add_str(w, "tokenizer.ggml.model", "none", err);
    g4_tokenizer *loaded = NULL;
    const g4_tokenizer *tok = src->tok;
    if (!tok) {
        if (g4_tok_load(src->tokenizer_json, &loaded, err)) return -1;
        tok = loaded;
    }
    str_list merges = {0};
    added_list added = {0};
    int rc = read_json_parts(src->tokenizer_json, &merges, &added, err) ||
             write_tokens(tok, &added, src->cfg->vocab_size, w, err) ||
             list_write(w, "tokenizer.ggml.merges", &merges, err) || write_specials(src, tok, w, err);
    list_free(&merges);
    free(added.item);
    g4_tok_free(loaded);
    return rc ? -1 : 0;
}
