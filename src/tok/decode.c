/* Decoding, as HF's decode(ids, skip_special_tokens) with the decoder chain
 * of tokenizer.json (Gemma: Replace "▁" -> " ", ByteFallback, Fuse), written
 * as a streaming decoder; whole-sequence decoding runs the same code. */
#include <stdlib.h>
#include <string.h>

#include "tok/tok_impl.h"
#include "tok/utf8.h"

struct g4_tok_decoder {
    const g4_tokenizer *tok;
    int skip_special;
    unsigned char *run; /* bytes of the pending <0xXX> run */
    size_t n_run, cap_run;
    char *out; /* text made final by the current call */
    size_t n_out, cap_out;
    char *tmp[4]; /* scratch for the per-string steps: 0-1 before ByteFallback, 2-3 after */
    size_t cap_tmp[4];
};

static int reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

static int append(g4_tok_decoder *d, const char *s, size_t n) {
    if (reserve(&d->out, &d->cap_out, d->n_out + n + 1)) return -1;
    memcpy(d->out + d->n_out, s, n);
    d->n_out += n;
    d->out[d->n_out] = 0;
    return 0;
}

/* One Replace or Strip step on s into scratch buffer `slot`. */
static int apply_step(g4_tok_decoder *d, const tok_dec_step *st, const char *s, size_t n, int slot, const char **out,
                      size_t *out_n) {
    if (st->kind == DEC_REPLACE) {
        const tok_replace *r = &st->rep;
        size_t k = 0;
        const char *p = s, *e = s + n;
        for (const char *q; (q = memmem(p, (size_t)(e - p), r->from, r->from_len)); p = q + r->from_len) {
            if (reserve(&d->tmp[slot], &d->cap_tmp[slot], k + (size_t)(q - p) + r->to_len + 1)) return -1;
            memcpy(d->tmp[slot] + k, p, (size_t)(q - p));
            k += (size_t)(q - p);
            memcpy(d->tmp[slot] + k, r->to, r->to_len);
            k += r->to_len;
        }
        if (reserve(&d->tmp[slot], &d->cap_tmp[slot], k + (size_t)(e - p) + 1)) return -1;
        memcpy(d->tmp[slot] + k, p, (size_t)(e - p));
        *out = d->tmp[slot];
        *out_n = k + (size_t)(e - p);
        return 0;
    }
    /* Strip: up to strip_start leading and strip_stop trailing strip_cp. */
    char enc[4];
    size_t el = tok_utf8_put(st->strip_cp, enc), a = 0, b = n;
    for (size_t i = 0; i < st->strip_start && b - a >= el && !memcmp(s + a, enc, el); i++) a += el;
    for (size_t i = 0; i < st->strip_stop && b - a >= el && !memcmp(s + b - el, enc, el); i++) b -= el;
    *out = s + a;
    *out_n = b - a;
    return 0;
}

/* Runs the steps, each Replace writing to the scratch slot (of the pair
 * starting at `base`) that the current string is not in. */
static int apply_steps(g4_tok_decoder *d, const tok_dec_step *steps, size_t n_steps, int base, const char **s,
                       size_t *n) {
    int cur = -1; /* the slot *s lies in, if any */
    for (size_t i = 0; i < n_steps; i++) {
        int slot = steps[i].kind == DEC_REPLACE ? (cur == base ? base + 1 : base) : cur;
        if (apply_step(d, &steps[i], *s, *n, slot, s, n)) return -1;
        cur = slot;
    }
    return 0;
}

/* A string that ends up in the output: the post-ByteFallback steps, then out. */
static int emit(g4_tok_decoder *d, const char *s, size_t n) {
    const g4_tokenizer *t = d->tok;
    if (apply_steps(d, t->dec_post, t->n_dec_post, 2, &s, &n)) return -1;
    return append(d, s, n);
}

/* The byte a "<0xXX>" text stands for, as HF's ByteFallback reads it
 * (u8::from_str_radix on the two characters, which also takes "+X"). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) {
            if (i == 3 && c == '+') continue;
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

static int flush_run(g4_tok_decoder *d) {
    if (!d->n_run) return 0;
    size_t n = d->n_run;
    d->n_run = 0;
    if (tok_utf8_valid((const char *)d->run, n, NULL)) return emit(d, (const char *)d->run, n);
    for (size_t i = 0; i < n; i++) /* HF: one U+FFFD per byte of an invalid run */
        if (emit(d, "\xef\xbf\xbd", 3)) return -1;
    return 0;
}

int g4_tok_decoder_new(const g4_tokenizer *tok, int skip_special, g4_tok_decoder **out, g4_error *err) {
    g4_tok_decoder *d = calloc(1, sizeof *d);
    if (!d) return *out = NULL, g4_fail(err, "tokenizer: out of memory");
    d->tok = tok;
    d->skip_special = skip_special;
    *out = d;
    return 0;
}

void g4_tok_decoder_free(g4_tok_decoder *d) {
    if (!d) return;
    free(d->run);
    free(d->out);
    for (int i = 0; i < 4; i++) free(d->tmp[i]);
    free(d);
}

static int finish_call(g4_tok_decoder *d, int rc, const char **text, size_t *len, g4_error *err) {
    if (rc) return g4_fail(err, "tokenizer: out of memory");
    *text = d->out ? d->out : "";
    *len = d->n_out;
    return 0;
}

int g4_tok_decoder_push(g4_tok_decoder *d, int32_t id, const char **text, size_t *len, g4_error *err) {
    const g4_tokenizer *t = d->tok;
    *text = "";
    *len = 0;
    d->n_out = 0;
    if (id < 0 || id >= t->text.n || t->text.at[id].len == TOK_NO_TEXT)
        return g4_fail(err, "tokenizer: token id %d is not in the vocabulary", (int)id);
    if (d->skip_special && (t->flags[id] & TOKF_SPECIAL)) return 0;
    const char *s = t->text.pool + t->text.at[id].off;
    size_t n = t->text.at[id].len;
    int rc = apply_steps(d, t->dec_pre, t->n_dec_pre, 0, &s, &n);
    if (!rc && t->dec_byte_fallback) {
        int b = byte_token(s, n);
        if (b >= 0) {
            if (reserve((char **)&d->run, &d->cap_run, d->n_run + 1)) return finish_call(d, -1, text, len, err);
            d->run[d->n_run++] = (unsigned char)b;
            return finish_call(d, 0, text, len, err);
        }
        rc = flush_run(d); /* uses scratch slots 2-3 only: s stays valid */
    }
    if (!rc) rc = emit(d, s, n);
    return finish_call(d, rc, text, len, err);
}

int g4_tok_decoder_finish(g4_tok_decoder *d, const char **text, size_t *len, g4_error *err) {
    d->n_out = 0;
    return finish_call(d, flush_run(d), text, len, err);
}

int g4_tok_decode(const g4_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **text, size_t *len,
                  g4_error *err) {
    *text = NULL;
    *len = 0;
    g4_tok_decoder *d;
    if (g4_tok_decoder_new(tok, skip_special, &d, err)) return -1;
    char *buf = NULL;
    size_t k = 0, cap = 0;
    const char *piece;
    size_t pn;
    for (size_t i = 0; i <= n; i++) {
        if (i < n ? g4_tok_decoder_push(d, ids[i], &piece, &pn, err) : g4_tok_decoder_finish(d, &piece, &pn, err)) {
            free(buf);
            g4_tok_decoder_free(d);
            return -1;
        }
        if (reserve(&buf, &cap, k + pn + 1)) {
            free(buf);
            g4_tok_decoder_free(d);
            return g4_fail(err, "tokenizer: out of memory");
        }
        memcpy(buf + k, piece, pn);
        k += pn;
        buf[k] = 0;
    }
    g4_tok_decoder_free(d);
    *text = buf;
    *len = k;
    return 0;
}
