/* libFuzzer target for the tokenizer (src/tok/) with the real Gemma
 * vocabulary: arbitrary bytes are encoded and decoded, and the results are
 * checked against the API's promises. Build and run: tests/fuzz/README.md.
 *
 * The first input byte picks the mode and flags; the rest is the payload:
 *   bit 0  parse_special        bit 1  skip_special (decoding)
 *   bit 2  payload = token ids (little-endian uint32 each) instead of text
 *   bit 3  payload = a whole tokenizer.json (hostile files)
 * Text: invalid UTF-8 must be refused with a message, anything else must
 * encode to in-range ids, with and without the piece cache alike, and decode
 * back to the text (U+2581 reading as a space). Ids: decoding either fails
 * with a message (an id with no token) or gives valid UTF-8. Always: the
 * streaming decoder's pieces are whole UTF-8 and add up to the whole
 * decode. A tokenizer.json either fails to load with a message or gives a
 * tokenizer that encodes and decodes a few probes within those rules. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tok_impl.h"
#include "tok/tokenizer.h"
#include "tok/utf8.h"

static g4_tokenizer *tok; /* the real one, or the one under test in json mode */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("G4_TOKENIZER_JSON");
    if (!path || !*path) path = "build/tokenizer/tokenizer.json";
    g4_error err;
    if (g4_tok_load(path, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s (run tools/fetch_tokenizer.sh or set G4_TOKENIZER_JSON)\n", err.msg);
        exit(1);
    }
    return 0;
}

/* Streams ids through a decoder; returns the joined text or NULL on error. */
static char *stream(const int32_t *ids, size_t n, int skip, size_t *len) {
    g4_tok_decoder *d;
    g4_error err;
    if (g4_tok_decoder_new(tok, skip, &d, &err)) abort();
    char *out = malloc(1);
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *piece;
        size_t pn;
        int rc = i < n ? g4_tok_decoder_push(d, ids[i], &piece, &pn, &err) : g4_tok_decoder_finish(d, &piece, &pn, &err);
        if (rc) {
            if (!err.msg[0]) abort();
            free(out);
            g4_tok_decoder_free(d);
            return NULL;
        }
        if (!tok_utf8_valid(piece, pn, NULL)) abort(); /* never half a character */
        out = realloc(out, k + pn + 1);
        memcpy(out + k, piece, pn);
        k += pn;
    }
    g4_tok_decoder_free(d);
    *len = k;
    return out;
}

/* decode and streaming decode agree; returns the text or NULL on error. */
static char *decode_both(const int32_t *ids, size_t n, int skip, size_t *len) {
    char *whole;
    size_t wl, sl;
    g4_error err;
    err.msg[0] = 0;
    int rc = g4_tok_decode(tok, ids, n, skip, &whole, &wl, &err);
    char *streamed = stream(ids, n, skip, &sl);
    if (rc) {
        if (!err.msg[0] || streamed) abort();
        return NULL;
    }
    if (!streamed || sl != wl || memcmp(streamed, whole, wl) || !tok_utf8_valid(whole, wl, NULL)) abort();
    free(streamed);
    *len = wl;
    return whole;
}

static void fuzz_text(const char *text, size_t len, int parse_special, int skip) {
    int32_t *ids, *ids2;
    size_t n, n2;
    g4_error err;
    err.msg[0] = 0;
    int valid = tok_utf8_valid(text, len, NULL);
    if (g4_tok_encode(tok, text, len, parse_special, &ids, &n, &err)) {
        if (valid || !strstr(err.msg, "invalid UTF-8")) abort();
        return;
    }
    if (!valid) abort();
    if (tok_encode_ex(tok, text, len, parse_special, len < 4096, &ids2, &n2, &err)) abort();
    if (n2 != n || (n && memcmp(ids, ids2, n * sizeof *ids))) abort(); /* the cache changes nothing */
    free(ids2);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g4_tok_n_vocab(tok)) abort();
    size_t dl;
    char *back = decode_both(ids, n, skip, &dl);
    if (!back) abort();
    if (!skip) { /* the round trip, with U+2581 read as a space */
        size_t k = 0;
        for (size_t i = 0; i < len;) {
            if (len - i >= 3 && !memcmp(text + i, "\xe2\x96\x81", 3)) {
                if (k >= dl || back[k] != ' ') abort();
                i += 3;
            } else {
                if (k >= dl || back[k] != text[i]) abort();
                i++;
            }
            k++;
        }
        if (k != dl) abort();
    }
    free(back);
    free(ids);
}

static void fuzz_json(const char *json, size_t len) {
    g4_tokenizer *real = tok, *t = NULL;
    g4_error err;
    err.msg[0] = 0;
    if (g4_tok_load_json(json, len, &t, &err)) {
        if (!err.msg[0] || t || strchr(err.msg, '\n')) abort();
        return;
    }
    tok = t;
    const char *probe[] = {"ab c", "x\xc3\xa9 <eos><u>q q\t\n\n", "a-b--ab-", "<m>  \xe2\x96\x81", ""};
    for (size_t p = 0; p < sizeof probe / sizeof *probe; p++) {
        int32_t *ids;
        size_t n, dl;
        /* no round trip here: lstrip/rstrip and odd decoders may drop text */
        for (int ps = 0; ps < 2; ps++) {
            if (g4_tok_encode(tok, probe[p], strlen(probe[p]), ps, &ids, &n, &err)) abort();
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= g4_tok_n_vocab(tok)) abort();
            free(decode_both(ids, n, ps, &dl));
            free(ids);
        }
    }
    g4_tok_free(t);
    tok = real;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    int parse_special = mode & 1, skip = (mode >> 1) & 1;
    if (mode & 8) {
        fuzz_json((const char *)data, size);
        return 0;
    }
    if (!(mode & 4)) {
        fuzz_text((const char *)data, size, parse_special, skip);
        return 0;
    }
    /* ids, spread over the vocabulary and a little past both ends */
    size_t n = size / 4;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    uint32_t span = (uint32_t)g4_tok_n_vocab(tok) + 2;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        ids[i] = (int32_t)(v % span) - 1;
    }
    size_t len;
    free(decode_both(ids, n, skip, &len));
    free(ids);
    return 0;
}
