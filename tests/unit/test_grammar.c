/* Structured output (src/grammar): random walks through the masks, each
 * result checked by an independent reader: jansson for JSON, POSIX regular
 * expressions (regcomp) for patterns, formats and user grammars, the chat
 * output parser for tool calls, plus hand checks of object shapes. Also:
 * every masked-out token is refused by accept, special tokens stay masked,
 * the whitespace bound, the token budget closing values, and clear errors
 * for unsupported schemas and bad grammars.
 *
 * Runs on a small tokenizer built here (byte tokens, some multi-byte tokens,
 * Gemma 4's special tokens), so it is fast under the sanitizers. The mask
 * cost on the real 262,144-token vocabulary is tests/unit/test_grammar_vocab.c. */
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gemma4.h"
#include "grammar/states.h"

static const char *const specials[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<|tool_call>", "<tool_call|>",
                                       "<|\"|>", "<turn|>", "<|tool_response>", "<|channel>"};
static const char *const words[] = {
    "\xe2\x96\x81", "\xe2\x96\x81\xe2\x96\x81", "\n", "\t", "{", "}", "[", "]", "\"", ":", ",", "{\"", "\":", "\",\"",
    "\"}", "\"]", "true", "false", "null", "ab", "abc", "x", "1", "2", "0", "9", "-", ".", "e", "E", "+", "call:",
    "get_weather", "set_alarm", "city", "unit", "days", "\xe2\x96\x81\"", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "<",
    "<|", "<a", "tool", "_call", "a", "b", "c", "d", "f", "12", "-1", "\\", "\\\"", "\\n", "T", "Z", "\xe2\x96\x81:",
    "a\"", "1,", "],", "},", "<unused7>", "<0x41>x", "0123", "9-", "::"};

/* A tokenizer.json with the tokens above (no merges: every text encodes
 * to single characters, which is all these tests need). */
static char *write_tokenizer(void) {
    json_t *vocab = json_object(), *added = json_array();
    int id = 0;
    char name[16];
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++, id++) {
        json_object_set_new(vocab, specials[i], json_integer(id));
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", specials[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    }
    for (int b = 0; b < 256; b++, id++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        json_object_set_new(vocab, name, json_integer(id));
    }
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!json_object_get(vocab, words[i])) json_object_set_new(vocab, words[i], json_integer(id++));
    json_t *t = json_pack(
        "{s:s, s:n, s:n, s:o, s:{s:s, s:{s:s}, s:s}, s:{s:s, s:{s:s}, s:s, s:b}, s:n,"
        " s:{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}]},"
        " s:{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:b, s:o, s:[]}}",
        "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer", "type", "Replace", "pattern",
        "String", " ", "content", "\xe2\x96\x81", "pre_tokenizer", "type", "Split", "pattern", "String", " ", "behavior",
        "MergedWithPrevious", "invert", 0, "post_processor", "decoder", "type", "Sequence", "decoders", "type", "Replace",
        "pattern", "String", "\xe2\x96\x81", "content", " ", "type", "ByteFallback", "type", "Fuse", "model", "type", "BPE",
        "dropout", "unk_token", "<unk>", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1, "byte_fallback",
        1, "ignore_merges", 0, "vocab", vocab, "merges");
    static char path[] = "/tmp/g4_test_grammar_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || !t) return NULL;
    close(fd);
    json_dump_file(t, path, JSON_COMPACT);
    json_decref(t);
    return path;
}

/* ---- random walks ---- */

typedef struct walk {
    int32_t ids[1024];
    int n;
    char *text; /* decoded, special tokens visible */
    int ended;  /* stopped on an end token with the text complete */
} walk;

static unsigned rng_state = 12345;
static float frand(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xFFFF) / 65536.0f;
}

static int is_end(const gemma4_tokenizer *tok, int32_t id) {
    return id == gemma4_token_id(tok, "<eos>") || id == gemma4_token_id(tok, "<turn|>") ||
           id == gemma4_token_id(tok, "<|tool_response>");
}

/* Samples uniformly among the allowed tokens until an end token or the
 * budget; checks that accept takes every allowed token and that special
 * tokens outside the grammar stay masked. */
static int run_walk(const gemma4_tokenizer *tok, const gemma4_grammar *g, int budget, walk *w, int check_refusals) {
    int V = gemma4_tokenizer_n_vocab(tok);
    float *logits = malloc(sizeof *logits * (size_t)V);
    gemma4_matcher *m;
    memset(w, 0, sizeof *w);
    if (!logits || gemma4_matcher_new(g, &m)) { free(logits); return -1; }
    if (budget) gemma4_matcher_set_max_tokens(m, budget);
    int rc = 0;
    for (int step = 0; step < (int)(sizeof w->ids / sizeof *w->ids); step++) {
        for (int i = 0; i < V; i++) logits[i] = frand();
        if (gemma4_matcher_mask(m, logits, V)) { rc = -1; break; }
        CHECK(!isfinite(logits[gemma4_token_id(tok, "<|channel>")]), "a special token the grammar does not use is allowed");
        int best = -1;
        for (int i = 0; i < V; i++)
            if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
        if (best < 0) { rc = -1; CHECK(0, "nothing allowed"); break; }
        if (check_refusals) { /* a masked-out ordinary token must be refused */
            int32_t banned = -1;
            for (int tries = 0; tries < 50 && banned < 0; tries++) {
                int32_t c = (int32_t)(frand() * (float)V);
                if (!isfinite(logits[c]) && !is_end(tok, c)) banned = c;
            }
            if (banned >= 0) {
                gemma4_matcher *replay;
                gemma4_matcher_new(g, &replay);
                if (budget) gemma4_matcher_set_max_tokens(replay, budget);
                for (int k = 0; k < w->n; k++) gemma4_matcher_accept(replay, w->ids[k]);
                /* with a budget the mask may also drop grammatical tokens, which accept takes */
                if (!budget) CHECK(gemma4_matcher_accept(replay, banned) != 0, "masked token %d accepted", banned);
                gemma4_matcher_free(replay);
            }
        }
        if (is_end(tok, best)) {
            CHECK(gemma4_matcher_is_complete(m), "an end token before the text is complete");
            w->ended = 1;
            break;
        }
        if (gemma4_matcher_accept(m, best)) {
            CHECK(0, "allowed token %d refused: %s", best, gemma4_last_error());
            rc = -1;
            break;
        }
        w->ids[w->n++] = best;
    }
    gemma4_matcher_free(m);
    free(logits);
    if (!rc && gemma4_detokenize(tok, w->ids, (size_t)w->n, 0, &w->text, NULL)) rc = -1;
    return rc;
}

static gemma4_grammar *schema(const gemma4_tokenizer *tok, const char *json) {
    gemma4_grammar *g = NULL;
    if (gemma4_grammar_from_json_schema(tok, json, &g)) CHECK(0, "schema %s: %s", json ? json : "(any)", gemma4_last_error());
    return g;
}

static json_t *walk_json(const gemma4_tokenizer *tok, const gemma4_grammar *g, int budget, walk *w) {
    if (run_walk(tok, g, budget, w, 0)) return NULL;
    json_error_t e;
    json_t *v = json_loads(w->text, JSON_DECODE_ANY, &e);
    CHECK(v, "not JSON (%s): %s", e.text, w->text);
    CHECK(w->ended, "did not end: %s", w->text);
    return v;
}

static int matches(const char *ere, const char *s) {
    regex_t re;
    if (regcomp(&re, ere, REG_EXTENDED | REG_NOSUB)) return -1;
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* ---- tests ---- */

static void expect_error(const gemma4_tokenizer *tok, const char *json, const char *message_part);
#define expect_error_fn expect_error

static void test_any_json(const gemma4_tokenizer *tok) {
    gemma4_grammar *g = schema(tok, NULL);
    if (!g) return;
    int longest_ws = 0;
    for (int k = 0; k < 60; k++) {
        walk w;
        CHECK(!run_walk(tok, g, 0, &w, k < 10), "walk failed: %s", gemma4_last_error());
        if (w.n < (int)(sizeof w.ids / sizeof *w.ids)) {
            json_error_t e;
            json_t *v = json_loads(w.text ? w.text : "", JSON_DECODE_ANY, &e);
            CHECK(v && w.ended, "not JSON (%s): %s", e.text, w.text);
            json_decref(v);
        }
        for (const char *p = w.text; p && *p;) {
            int run = 0;
            while (p[run] == ' ' || p[run] == '\t' || p[run] == '\n' || p[run] == '\r') run++;
            if (run > longest_ws) longest_ws = run;
            p += run ? run : 1;
        }
        gemma4_free(w.text);
    }
    CHECK(longest_ws <= 12, "a whitespace run of %d bytes", longest_ws);
    /* a budget closes every value cleanly, within the budget */
    for (int k = 0; k < 40; k++) {
        walk w;
        json_t *v = walk_json(tok, g, 24, &w);
        CHECK(w.n <= 23, "%d tokens over a budget of 24 (one is the end token)", w.n);
        json_decref(v);
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);
}

static void test_object(const gemma4_tokenizer *tok) {
    gemma4_grammar *g = schema(tok, "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":5},"
                                    "\"n\":{\"type\":\"integer\"},\"ok\":{\"type\":\"boolean\"},\"tags\":{\"type\":\"array\","
                                    "\"items\":{\"enum\":[\"a\",\"b\",null]},\"minItems\":1,\"maxItems\":2}},"
                                    "\"required\":[\"name\",\"tags\"],\"additionalProperties\":false}");
    if (!g) return;
    for (int k = 0; k < 60; k++) {
        walk w;
        json_t *v = walk_json(tok, g, 64, &w);
        if (v) {
            const json_t *name = json_object_get(v, "name"), *n = json_object_get(v, "n"), *ok = json_object_get(v, "ok"),
                         *tags = json_object_get(v, "tags");
            CHECK(json_is_string(name) && json_string_length(name) <= 5 + 5 * 3, "name: %s", w.text);
            CHECK(!n || json_is_integer(n), "n: %s", w.text);
            CHECK(!ok || json_is_boolean(ok), "ok: %s", w.text);
            CHECK(json_is_array(tags) && json_array_size(tags) >= 1 && json_array_size(tags) <= 2, "tags: %s", w.text);
            size_t extra = json_object_size(v) - !!name - !!n - !!ok - !!tags;
            CHECK(extra == 0, "undeclared keys: %s", w.text);
            for (size_t i = 0; i < json_array_size(tags); i++) {
                const json_t *t = json_array_get(tags, i);
                CHECK(json_is_null(t) || (json_is_string(t) && strspn(json_string_value(t), "ab") == 1 &&
                                          json_string_length(t) == 1), "tag: %s", w.text);
            }
            /* maxLength counts characters, not bytes */
            const char *s = json_string_value(name);
            size_t chars = 0;
            for (; s && *s; s++) chars += ((unsigned char)*s & 0xC0) != 0x80;
            CHECK(chars <= 5, "%zu characters: %s", chars, w.text);
        }
        json_decref(v);
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);
}

/* Strings against POSIX regular expressions: the JSON text is decoded by
 * jansson, then matched by the C library's regex engine. */
static void test_strings(const gemma4_tokenizer *tok) {
    static const struct {
        const char *schema, *ere;
    } cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"^[a-c]{2,4}x?$\"}", "^[a-c]{2,4}x?$"},
        {"{\"type\":\"string\",\"pattern\":\"^(ab|c)+-[0-9]{3}$\"}", "^(ab|c)+-[0-9]{3}$"},
        {"{\"type\":\"string\",\"pattern\":\"a+b\"}", "a+b"},
        {"{\"type\":\"string\",\"pattern\":\"^\\\\\\\\\\\"\\\\d\\\\.$\"}", "^\\\\\"[0-9]\\.$"},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
        {"{\"type\":\"string\",\"format\":\"date\"}", "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"},
        {"{\"type\":\"string\",\"format\":\"date-time\"}",
         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"},
        {"{\"type\":\"string\",\"format\":\"email\"}", "^[a-z0-9_+.-]+@([a-z0-9]+\\.)+[a-z]{2,}$"},
        {"{\"type\":\"string\",\"format\":\"ipv4\"}", "^([0-9]{1,3}\\.){3}[0-9]{1,3}$"},
        {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "^.{2,3}$"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        gemma4_grammar *g = schema(tok, cases[c].schema);
        if (!g) continue;
        for (int k = 0; k < 25; k++) {
            walk w;
            json_t *v = walk_json(tok, g, 96, &w);
            CHECK(json_is_string(v) && matches(cases[c].ere, json_string_value(v)) == 1, "%s gave %s", cases[c].schema,
                  w.text);
            if (json_is_string(v) && strstr(cases[c].schema, "date\"")) { /* a real day of the month */
                int y, mo, d;
                static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
                CHECK(sscanf(json_string_value(v), "%d-%d-%d", &y, &mo, &d) == 3 && d <= days[mo - 1], "date %s", w.text);
            }
            json_decref(v);
            gemma4_free(w.text);
        }
        gemma4_grammar_free(g);
    }
}

/* Integer bounds: every value within them, and (for a small range) every
 * value of the range reachable. */
static void test_integer_ranges(const gemma4_tokenizer *tok) {
    static const struct {
        const char *schema;
        long long lo, hi;
    } cases[] = {
        {"{\"type\":\"integer\",\"minimum\":-7,\"maximum\":12}", -7, 12},
        {"{\"type\":\"integer\",\"minimum\":95,\"exclusiveMaximum\":1003}", 95, 1002},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":-151,\"maximum\":-3}", -150, -3},
        {"{\"type\":\"number\",\"minimum\":0.5,\"maximum\":3.5}", 1, 3},
        {"{\"minimum\":1000000}", 1000000, 999999999999999LL},
        {"{\"type\":\"integer\",\"minimum\":0,\"maximum\":0}", 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        gemma4_grammar *g = schema(tok, cases[c].schema);
        int seen[20] = {0};
        for (int k = 0; g && k < (c == 0 ? 600 : 40); k++) {
            walk w;
            json_t *v = walk_json(tok, g, 40, &w);
            long long x = json_is_integer(v) ? (long long)json_integer_value(v) : cases[c].lo - 1;
            CHECK(x >= cases[c].lo && x <= cases[c].hi, "%s gave %s", cases[c].schema, w.text);
            if (c == 0 && x >= -7 && x <= 12) seen[x + 7] = 1;
            json_decref(v);
            gemma4_free(w.text);
        }
        for (int i = 0; c == 0 && i < 20; i++) CHECK(seen[i], "%d never generated", i - 7);
        gemma4_grammar_free(g);
    }
    expect_error_fn(tok, "{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer");
}

static void test_combinators(const gemma4_tokenizer *tok) {
    gemma4_grammar *g = schema(tok, "{\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"k\":{\"type\":\"array\",\"items\":"
                                    "{\"$ref\":\"#/$defs/t\"},\"maxItems\":2}},\"required\":[\"k\"],\"additionalProperties\":false}},"
                                    "\"anyOf\":[{\"$ref\":\"#/$defs/t\"},{\"const\":[1,\"x\"]},{\"type\":\"null\"}]}");
    for (int k = 0; g && k < 40; k++) {
        walk w;
        json_t *v = walk_json(tok, g, 80, &w);
        json_t *cst = json_pack("[i,s]", 1, "x");
        CHECK(json_is_null(v) || json_equal(v, cst) || json_is_array(json_object_get(v, "k")), "anyOf: %s", w.text);
        json_decref(cst);
        json_decref(v);
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);
    g = schema(tok, "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":2}]}");
    for (int k = 0; g && k < 20; k++) {
        walk w;
        json_t *v = walk_json(tok, g, 32, &w);
        CHECK(json_is_integer(v) || (json_is_string(v) && json_string_length(v) <= 2 * 4), "oneOf: %s", w.text);
        json_decref(v);
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);
}

/* The state tables start over when they grow past their bounds, with every
 * live matcher's state carried over: with tiny bounds that happens on almost
 * every step, and two interleaved walks must still give valid JSON. */
static void test_compaction(const gemma4_tokenizer *tok) {
    gemma4_grammar *g = schema(tok, "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
                                    "{\"a\":{\"type\":\"string\",\"maxLength\":4},\"b\":{\"type\":\"number\"}},"
                                    "\"required\":[\"a\"]},\"maxItems\":3}");
    if (!g) return;
    g->states->max_nodes = 64;
    g->states->max_sets = 8;
    int V = gemma4_tokenizer_n_vocab(tok);
    float *logits = malloc(sizeof *logits * (size_t)V);
    for (int round = 0; round < 10; round++) {
        gemma4_matcher *m[2];
        int32_t ids[2][128];
        int n[2] = {0, 0}, done[2] = {0, 0};
        gemma4_matcher_new(g, &m[0]);
        gemma4_matcher_new(g, &m[1]);
        for (int k = 0; k < 2; k++) gemma4_matcher_set_max_tokens(m[k], 60);
        for (int step = 0; step < 256 && !(done[0] && done[1]); step++) {
            int k = step & 1;
            if (done[k]) continue;
            for (int i = 0; i < V; i++) logits[i] = frand();
            CHECK(!gemma4_matcher_mask(m[k], logits, V), "mask: %s", gemma4_last_error());
            int best = -1;
            for (int i = 0; i < V; i++)
                if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
            if (best < 0 || is_end(tok, best) || n[k] == 128) { done[k] = 1; continue; }
            CHECK(!gemma4_matcher_accept(m[k], best), "accept: %s", gemma4_last_error());
            ids[k][n[k]++] = best;
        }
        for (int k = 0; k < 2; k++) {
            char *text = NULL;
            gemma4_detokenize(tok, ids[k], (size_t)n[k], 0, &text, NULL);
            json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, NULL);
            CHECK(json_is_array(v), "after compaction: %s", text ? text : "");
            json_decref(v);
            gemma4_free(text);
            gemma4_matcher_free(m[k]);
        }
    }
    free(logits);
    gemma4_grammar_free(g);
}

static void expect_error(const gemma4_tokenizer *tok, const char *json, const char *message_part) {
    gemma4_grammar *g = NULL;
    int rc = gemma4_grammar_from_json_schema(tok, json, &g);
    CHECK(rc == -1 && !g && strstr(gemma4_last_error(), message_part), "%s: rc %d, \"%s\"", json, rc, gemma4_last_error());
    gemma4_grammar_free(g);
}

static void test_unsupported(const gemma4_tokenizer *tok) {
    expect_error(tok, "{\"type\":\"integer\",\"multipleOf\":3}", "unsupported keyword: multipleOf");
    expect_error(tok, "{\"not\":{\"type\":\"null\"}}", "unsupported keyword: not");
    expect_error(tok, "{\"allOf\":[{}]}", "unsupported keyword: allOf");
    expect_error(tok, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"uri\"}}}",
                 "unsupported format \"uri\"");
    expect_error(tok, "{\"type\":\"string\",\"pattern\":\"(?=a)b\"}", "lookaround");
    expect_error(tok, "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "unsupported escape");
    expect_error(tok, "{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "may overlap");
    expect_error(tok, "{\"$ref\":\"https://example.com/s.json\"}", "unsupported $ref");
    expect_error(tok, "{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "tuple");
    expect_error(tok, "{\"type\":\"strng\"}", "unknown \"type\"");
    expect_error(tok, "{\"type\":\"string\",\"maxLength\":2,\"minLength\":3}", "below minLength");
    expect_error(tok, "{\"type\":", "not valid JSON");
    expect_error(tok, "false", "matches nothing");
    expect_error(tok, "{\"properties\":{\"a\":{}},\"required\":[\"b\"],\"additionalProperties\":false}",
                 "additionalProperties: false forbids: b");
    expect_error(tok, "{\"enum\":[1,2],\"type\":\"string\"}", "fits");
    expect_error(tok, "{\"type\":\"string\",\"pattern\":\"a\",\"maxLength\":3}", "not supported");
    /* nested: the path says where */
    expect_error(tok, "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"array\",\"items\":{\"uniqueItems\":true}}}}",
                 "/properties/x/items");
}

static void test_text_format(const gemma4_tokenizer *tok) {
    const char *text = "# a user grammar\n"
                       "root ::= greeting (\",\" ws greeting){0,3} end\n"
                       "greeting ::= (\"ab\" | [c-f]+) num?\n"
                       "num ::= [0-9]{1,2}\n"
                       "ws ::= \" \"?\n"
                       "end ::= \".\" | \"!\" | \"\\u00e9\"\n";
    gemma4_grammar *g = NULL;
    CHECK(!gemma4_grammar_from_text(tok, text, &g), "grammar: %s", gemma4_last_error());
    for (int k = 0; g && k < 40; k++) {
        walk w;
        CHECK(!run_walk(tok, g, 0, &w, k < 10) && w.ended, "walk");
        CHECK(w.text && matches("^(ab|[c-f]+)[0-9]{0,2}(, ?(ab|[c-f]+)[0-9]{0,2}){0,3}(\\.|!|\xc3\xa9)$", w.text) == 1,
              "text: %s", w.text ? w.text : "");
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);

    /* special tokens by name */
    g = NULL;
    CHECK(!gemma4_grammar_from_text(tok, "root ::= @\"<|tool_call>\" \"x\"+ @\"<tool_call|>\"", &g), "%s",
          gemma4_last_error());
    for (int k = 0; g && k < 10; k++) {
        walk w;
        CHECK(!run_walk(tok, g, 0, &w, 0) && w.ended, "walk");
        CHECK(w.text && matches("^<\\|tool_call>x+<tool_call\\|>$", w.text) == 1, "tokens: %s", w.text ? w.text : "");
        CHECK(w.n >= 3 && w.ids[0] == gemma4_token_id(tok, "<|tool_call>"), "the special token itself");
        gemma4_free(w.text);
    }
    gemma4_grammar_free(g);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"root ::= thing", "thing is used but never defined"},
        {"root ::= root \"a\" | \"b\"", "left-recursive"},
        {"start ::= \"a\"", "no rule named root"},
        {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
        {"root ::= \"a\"\n  [b", "line 2"},
        {"root ::= @\"<nope>\"", "no special token <nope>"},
        {"root ::= \"a\"{3,2}", "bad repetition"},
        {"root ::= (\"a\"", "missing )"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        g = NULL;
        int rc = gemma4_grammar_from_text(tok, bad[i].text, &g);
        CHECK(rc == -1 && !g && strstr(gemma4_last_error(), bad[i].error), "%s: \"%s\"", bad[i].text, gemma4_last_error());
        gemma4_grammar_free(g);
    }
}

/* Tool calls go through the chat output parser, which must see exactly the
 * calls and arguments the grammar allowed. */
typedef struct calls {
    int n_calls, n_content_bytes, ended;
    json_t *args[32];
    char names[32][32];
} calls;

static void on_event(void *user, const gemma4_chat_event *ev) {
    calls *c = user;
    if (ev->kind == GEMMA4_CHAT_TOOL_CALL && c->n_calls < 32) {
        snprintf(c->names[c->n_calls], sizeof c->names[0], "%s", ev->name);
        c->args[c->n_calls++] = json_loads(ev->arguments, 0, NULL);
    } else if (ev->kind == GEMMA4_CHAT_CONTENT) {
        c->n_content_bytes += (int)ev->len;
    } else if (ev->kind == GEMMA4_CHAT_END) {
        c->ended = 1;
    }
}

static void test_tools(const gemma4_tokenizer *tok) {
    const char *tools =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
        "{\"unit\":{\"enum\":[\"c\",\"f\"]},\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"set_alarm\",\"parameters\":{\"type\":\"object\",\"properties\":"
        "{\"at\":{\"type\":\"string\",\"format\":\"time\"},\"days\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}},"
        "\"required\":[\"at\",\"days\"]}}}]";
    static const char *const choices[] = {"required", "set_alarm", "auto"};
    for (size_t ci = 0; ci < 3; ci++) {
        gemma4_grammar *g = NULL;
        CHECK(!gemma4_grammar_for_tools(tok, tools, choices[ci], &g), "tools: %s", gemma4_last_error());
        for (int k = 0; g && k < 25; k++) {
            walk w;
            if (run_walk(tok, g, 300, &w, 0)) { CHECK(0, "walk"); continue; }
            calls c = {0};
            gemma4_chat_parser *p;
            gemma4_chat_parser_new(0, on_event, &c, &p);
            gemma4_chat_parser_feed(p, w.text, strlen(w.text));
            gemma4_chat_parser_feed(p, "<|tool_response>", 16);
            gemma4_chat_parser_free(p);
            int n_call_tokens = 0;
            for (int i = 0; i < w.n; i++) n_call_tokens += w.ids[i] == gemma4_token_id(tok, "<|tool_call>");
            CHECK(c.n_calls == n_call_tokens, "%d calls parsed of %d written: %s", c.n_calls, n_call_tokens, w.text);
            if (strcmp(choices[ci], "auto")) CHECK(c.n_calls >= 1 && c.n_content_bytes == 0, "calls only: %s", w.text);
            for (int i = 0; i < c.n_calls; i++) {
                json_t *a = c.args[i];
                if (!strcmp(c.names[i], "get_weather")) {
                    const json_t *unit = json_object_get(a, "unit"), *days = json_object_get(a, "days");
                    CHECK(strcmp(choices[ci], "set_alarm"), "another tool called");
                    CHECK(json_is_string(json_object_get(a, "city")), "city: %s", w.text);
                    CHECK(!unit || (json_is_string(unit) && strspn(json_string_value(unit), "cf") == 1), "unit: %s", w.text);
                    CHECK(!days || json_is_integer(days), "days: %s", w.text);
                    CHECK(json_object_size(a) <= 3, "extra keys: %s", w.text);
                } else {
                    CHECK(!strcmp(c.names[i], "set_alarm"), "unknown tool %s", c.names[i]);
                    const json_t *at = json_object_get(a, "at"), *days = json_object_get(a, "days");
                    CHECK(json_is_string(at) && matches("^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]", json_string_value(at)) == 1,
                          "at: %s", w.text);
                    CHECK(json_is_array(days), "days: %s", w.text);
                    for (size_t j = 0; j < json_array_size(days); j++)
                        CHECK(json_is_boolean(json_array_get(days, j)), "days: %s", w.text);
                }
                json_decref(a);
            }
            gemma4_free(w.text);
        }
        gemma4_grammar_free(g);
    }
    gemma4_grammar *g = NULL;
    CHECK(gemma4_grammar_for_tools(tok, tools, "nope", &g) == -1 && strstr(gemma4_last_error(), "nope"), "bad choice");
    CHECK(gemma4_grammar_for_tools(tok, "[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]", "auto", &g) == -1 &&
              strstr(gemma4_last_error(), "tool name"), "bad name: %s", gemma4_last_error());
    CHECK(gemma4_grammar_for_tools(tok, "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                                        "\"properties\":{\"a:b\":{}}}}}]", "auto", &g) == -1 &&
              strstr(gemma4_last_error(), "property name"), "bad key: %s", gemma4_last_error());
}

int main(void) {
    setlocale(LC_CTYPE, "C.UTF-8"); /* regexec counts characters, not bytes */
    char *path = write_tokenizer();
    gemma4_tokenizer *tok = NULL;
    if (!path || gemma4_tokenizer_load(path, &tok)) {
        fprintf(stderr, "test_grammar: cannot build the test tokenizer: %s\n", gemma4_last_error());
        return 1;
    }
    unlink(path);
    test_any_json(tok);
    test_object(tok);
    test_strings(tok);
    test_integer_ranges(tok);
    test_combinators(tok);
    test_compaction(tok);
    test_unsupported(tok);
    test_text_format(tok);
    test_tools(tok);
    gemma4_tokenizer_free(tok);
    return check_exit("test_grammar");
}
