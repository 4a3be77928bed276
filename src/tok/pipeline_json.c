#include "tok/pipeline_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tok_impl.h"
#include "tok/utf8.h"

#define MAX_NESTING 16

static json_t *load_span(const char *json, size_t len, const char *section, g4_error *err) {
    json_error_t jerr;
    json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v) g4_fail(err, "tokenizer.json: %s: %s", section, jerr.text);
    return v;
}

static const char *type_of(json_t *o) {
    const char *type = json_string_value(json_object_get(o, "type"));
    return type ? type : "(no type)";
}

/* {"String": "..."} -> the string; a Regex pattern is refused. */
static int string_pattern(json_t *o, const char *section, const char **s, size_t *n, g4_error *err) {
    json_t *pat = json_object_get(o, "pattern");
    json_t *str = json_object_get(pat, "String");
    if (json_object_get(pat, "Regex")) return g4_fail(err, "tokenizer.json: %s: regex patterns are not supported", section);
    if (!json_is_string(str) || !json_string_length(str))
        return g4_fail(err, "tokenizer.json: %s: pattern must be {\"String\": non-empty string}", section);
    *s = json_string_value(str);
    *n = json_string_length(str);
    return 0;
}

static int replace_rule(json_t *o, const char *section, tok_replace **list, size_t *n, g4_error *err) {
    const char *from;
    size_t from_len;
    json_t *content = json_object_get(o, "content");
    if (string_pattern(o, section, &from, &from_len, err)) return -1;
    if (!json_is_string(content)) return g4_fail(err, "tokenizer.json: %s: Replace needs a string \"content\"", section);
    if (tok_add_replace(list, n, from, from_len, json_string_value(content), json_string_length(content)))
        return g4_fail(err, "tokenizer: out of memory");
    return 0;
}

static int normalizer(g4_tokenizer *t, json_t *o, int depth, g4_error *err) {
    if (json_is_null(o)) return 0;
    if (!json_is_object(o) || depth > MAX_NESTING) return g4_fail(err, "tokenizer.json: normalizer is malformed");
    const char *type = type_of(o);
    if (!strcmp(type, "Replace")) return replace_rule(o, "normalizer", &t->norm, &t->n_norm, err);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(o, "normalizers");
        if (!json_is_array(list)) return g4_fail(err, "tokenizer.json: normalizer Sequence needs \"normalizers\"");
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) if (normalizer(t, x, depth + 1, err)) return -1;
        return 0;
    }
    return g4_fail(err, "tokenizer.json: normalizer %s is not supported", type);
}

int tok_parse_normalizer(g4_tokenizer *t, const char *json, size_t len, g4_error *err) {
    if (!json) return 0;
    json_t *o = load_span(json, len, "normalizer", err);
    if (!o) return -1;
    int rc = normalizer(t, o, 0, err);
    json_decref(o);
    return rc;
}

int tok_parse_pre_tokenizer(g4_tokenizer *t, const char *json, size_t len, g4_error *err) {
    if (!json) return 0;
    json_t *o = load_span(json, len, "pre_tokenizer", err);
    if (!o) return -1;
    int rc = 0;
    if (json_is_null(o)) goto done;
    if (!json_is_object(o)) {
        rc = g4_fail(err, "tokenizer.json: pre_tokenizer is malformed");
        goto done;
    }
    const char *type = type_of(o);
    if (strcmp(type, "Split")) {
        rc = g4_fail(err, "tokenizer.json: pre_tokenizer %s is not supported", type);
        goto done;
    }
    static const char *const behaviors[] = {
        [SPLIT_REMOVED] = "Removed",           [SPLIT_ISOLATED] = "Isolated",
        [SPLIT_MERGED_PREV] = "MergedWithPrevious", [SPLIT_MERGED_NEXT] = "MergedWithNext",
        [SPLIT_CONTIGUOUS] = "Contiguous",
    };
    const char *pat, *behavior = json_string_value(json_object_get(o, "behavior"));
    size_t pat_len;
    if (string_pattern(o, "pre_tokenizer", &pat, &pat_len, err)) {
        rc = -1;
        goto done;
    }
    if (json_is_true(json_object_get(o, "invert"))) {
        rc = g4_fail(err, "tokenizer.json: pre_tokenizer Split with invert is not supported");
        goto done;
    }
    t->split_behavior = -1;
    for (int b = 0; b < (int)(sizeof behaviors / sizeof *behaviors); b++)
        if (behavior && !strcmp(behavior, behaviors[b])) t->split_behavior = b;
    if (t->split_behavior < 0) {
        rc = g4_fail(err, "tokenizer.json: pre_tokenizer Split has an unknown behavior \"%s\"",
                     behavior ? behavior : "(none)");
        goto done;
    }
    if (!(t->split = malloc(pat_len))) {
        rc = g4_fail(err, "tokenizer: out of memory");
        goto done;
    }
    memcpy(t->split, pat, pat_len);
    t->split_len = pat_len;
done:
    json_decref(o);
    return rc;
}

static int add_step(tok_dec_step **list, size_t *n, const tok_dec_step *s) {
    tok_dec_step *l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l) return -1;
    *list = l;
    l[(*n)++] = *s;
    return 0;
}

typedef struct dec_state {
    int fused;
} dec_state;

static int decoder(g4_tokenizer *t, json_t *o, dec_state *st, int depth, g4_error *err) {
    if (!json_is_object(o) || depth > MAX_NESTING) return g4_fail(err, "tokenizer.json: decoder is malformed");
    const char *type = type_of(o);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(o, "decoders");
        if (!json_is_array(list)) return g4_fail(err, "tokenizer.json: decoder Sequence needs \"decoders\"");
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) if (decoder(t, x, st, depth + 1, err)) return -1;
        return 0;
    }
    /* Fuse joins the strings; what follows would act on the whole text,
     * which a streaming decoder cannot reproduce. */
    if (st->fused) return g4_fail(err, "tokenizer.json: decoder %s after Fuse is not supported", type);
    tok_dec_step **list = t->dec_byte_fallback ? &t->dec_post : &t->dec_pre;
    size_t *n = t->dec_byte_fallback ? &t->n_dec_post : &t->n_dec_pre;
    if (!strcmp(type, "Fuse")) {
        st->fused = 1;
        return 0;
    }
    if (!strcmp(type, "ByteFallback")) {
        if (t->dec_byte_fallback) return g4_fail(err, "tokenizer.json: decoder ByteFallback appears twice");
        t->dec_byte_fallback = 1;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        tok_replace *r = NULL;
        size_t nr = 0;
        if (replace_rule(o, "decoder", &r, &nr, err)) return -1;
        tok_dec_step s = {.kind = DEC_REPLACE, .rep = r[0]};
        free(r);
        if (add_step(list, n, &s)) {
            free(s.rep.from);
            free(s.rep.to);
            return g4_fail(err, "tokenizer: out of memory");
        }
        return 0;
    }
    if (!strcmp(type, "Strip")) {
        json_t *content = json_object_get(o, "content");
        json_t *start = json_object_get(o, "start"), *stop = json_object_get(o, "stop");
        const char *c = json_string_value(content);
        uint32_t cp = 0;
        if (!c || !json_is_integer(start) || !json_is_integer(stop) || json_integer_value(start) < 0 ||
            json_integer_value(stop) < 0 || !json_string_length(content) ||
            tok_utf8_next((const unsigned char *)c, json_string_length(content), &cp) != json_string_length(content))
            return g4_fail(err, "tokenizer.json: decoder Strip needs a one-character \"content\" and counts \"start\", \"stop\"");
        tok_dec_step s = {.kind = DEC_STRIP,
                          .strip_cp = cp,
                          .strip_start = (size_t)json_integer_value(start),
                          .strip_stop = (size_t)json_integer_value(stop)};
        if (add_step(list, n, &s)) return g4_fail(err, "tokenizer: out of memory");
        return 0;
    }
    return g4_fail(err, "tokenizer.json: decoder %s is not supported", type);
}

int tok_parse_decoder(g4_tokenizer *t, const char *json, size_t len, g4_error *err) {
    if (!json) return 0;
    json_t *o = load_span(json, len, "decoder", err);
    if (!o) return -1;
    dec_state st = {0};
    int rc = json_is_null(o) ? 0 : decoder(t, o, &st, 0, err);
    json_decref(o);
    return rc;
}
