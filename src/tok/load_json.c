/* Loading a Hugging Face tokenizer.json: the large model.vocab and
 * model.merges with the pull scanner (json_scan.c), the small pipeline
 * sections with jansson (pipeline_json.c). Every problem is a one-line
 * error naming the part of the file. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/json_scan.h"
#include "tok/pipeline_json.h"
#include "tok/tok_impl.h"

typedef struct span {
    const char *p;
    size_t n;
} span;

/* A sub-scanner over a span, reporting offsets in the whole file. */
static void tj_span(tok_json *sub, const tok_json *whole, span s) {
    tj_init(sub, s.p, s.n);
    sub->base = whole->base;
}

static int scan_fail(tok_json *j, const char *where, g4_error *err) {
    return g4_fail(err, "tokenizer.json: %s: %s", where, j->err[0] ? j->err : "invalid JSON");
}

static int key_is(const char *k, size_t n, const char *want) { return strlen(want) == n && !memcmp(k, want, n); }

/* Records the span of the value for a key; a key given twice is an error. */
static int take_span(tok_json *j, span *s, const char *name, g4_error *err) {
    if (s->p) return g4_fail(err, "tokenizer.json: key \"%s\" appears twice", name);
    tj_peek(j);
    const char *start = j->p;
    if (tj_skip(j)) return scan_fail(j, name, err);
    s->p = start;
    s->n = (size_t)(j->p - start);
    return 0;
}

typedef struct vocab_entry {
    uint32_t off, len;
    int32_t id;
} vocab_entry;

typedef struct added_in {
    int32_t id;
    char *content;
    size_t len;
    int special, lstrip, rstrip, normalized;
} added_in;

typedef struct model_cfg {
    span merges; /* merges met before the vocabulary, parsed after it */
    int have_vocab, have_merges;
    char *unk;
    size_t unk_len;
    int byte_fallback, fuse_unk, ignore_merges;
} model_cfg;

static int parse_vocab(tok_json *j, g4_tokenizer *t, g4_error *err);
static int parse_merges(tok_json *j, g4_tokenizer *t, g4_error *err);

/* A string or null into a malloc'ed copy (NULL for null). */
static int opt_string(tok_json *j, char **out, size_t *len) {
    free(*out);
    *out = NULL;
    if (tj_null(j)) return 0;
    const char *s;
    if (tj_string(j, &s, len)) return -1;
    if (!(*out = malloc(*len + 1))) return tj_fail(j, "out of memory");
    memcpy(*out, s, *len);
    (*out)[*len] = 0;
    return 0;
}

/* The model object, read in one pass: the vocabulary is indexed as soon as
 * it is read, so the merges after it are resolved as they stream by. */
static int parse_model(tok_json *j, model_cfg *m, g4_tokenizer *t, g4_error *err) {
    const char *k;
    size_t kn, n = 0, len;
    int rc, seen_type = 0;
    char *str = NULL;
    if (tj_expect(j, '{')) return scan_fail(j, "model", err);
    while ((rc = tj_obj_next(j, &n, &k, &kn)) == 1) {
        if (key_is(k, kn, "type")) {
            if (opt_string(j, &str, &len)) break;
            if (!str || strcmp(str, "BPE")) {
                g4_fail(err, "tokenizer.json: model type \"%s\" is not supported (only BPE)", str ? str : "null");
                free(str);
                return -1;
            }
            seen_type = 1;
        } else if (key_is(k, kn, "vocab")) {
            if (m->have_vocab) return free(str), g4_fail(err, "tokenizer.json: key \"model.vocab\" appears twice");
            m->have_vocab = 1;
            if (parse_vocab(j, t, err)) return free(str), -1;
        } else if (key_is(k, kn, "merges")) {
            if (m->have_merges) return free(str), g4_fail(err, "tokenizer.json: key \"model.merges\" appears twice");
            m->have_merges = 1;
            if (m->have_vocab ? parse_merges(j, t, err) : take_span(j, &m->merges, "model.merges", err))
                return free(str), -1;
        } else if (key_is(k, kn, "unk_token")) {
            if (opt_string(j, &m->unk, &m->unk_len)) break;
        } else if (key_is(k, kn, "continuing_subword_prefix") || key_is(k, kn, "end_of_word_suffix")) {
            int prefix = key_is(k, kn, "continuing_subword_prefix");
            if (opt_string(j, &str, &len)) break;
            if (str && len) {
                free(str);
                return g4_fail(err, "tokenizer.json: model.%s is not supported",
                               prefix ? "continuing_subword_prefix" : "end_of_word_suffix");
            }
        } else if (key_is(k, kn, "dropout")) {
            if (tj_null(j)) continue;
            int c = tj_peek(j), zero = c == '-' || (c >= '0' && c <= '9');
            const char *start = j->p;
            if (tj_skip(j)) break;
            for (const char *p = start; zero && p < j->p && *p != 'e' && *p != 'E'; p++) zero = !(*p >= '1' && *p <= '9');
            if (!zero) /* dropout makes encoding random */
                return free(str), g4_fail(err, "tokenizer.json: model.dropout is not supported (must be null or 0)");
        } else if (key_is(k, kn, "fuse_unk") || key_is(k, kn, "byte_fallback") || key_is(k, kn, "ignore_merges")) {
            int *dst = key_is(k, kn, "fuse_unk") ? &m->fuse_unk
                       : key_is(k, kn, "byte_fallback") ? &m->byte_fallback
                                                       : &m->ignore_merges;
            if (tj_bool(j, dst)) break;
        } else if (tj_skip(j)) {
            break;
        }
    }
    free(str);
    if (rc != 0) return scan_fail(j, "model", err);
    if (!seen_type) return g4_fail(err, "tokenizer.json: model has no \"type\"");
    if (!m->have_vocab) return g4_fail(err, "tokenizer.json: model has no \"vocab\"");
    if (!m->have_merges && tok_merges_begin(t, 0, err)) return -1;
    if (m->merges.p) {
        tok_json sub;
        tj_span(&sub, j, m->merges);
        rc = parse_merges(&sub, t, err);
        tj_free(&sub);
        if (rc) return -1;
    }
    return 0;
}

/* model.vocab: text -> id. The texts go to the pool as they are read, then
 * by id into the tables, which are indexed at once. */
static int parse_vocab(tok_json *j, g4_tokenizer *t, g4_error *err) {
    size_t cap = 4096, n = 0;
    vocab_entry *e = malloc(cap * sizeof *e);
    const char *k;
    size_t kn, count = 0;
    int rc;
    int64_t max_id = -1;
    if (!e) return g4_fail(err, "tokenizer: out of memory");
    if (tj_expect(j, '{')) goto bad;
    while ((rc = tj_obj_next(j, &count, &k, &kn)) == 1) {
        if (n == cap) {
            vocab_entry *bigger = realloc(e, (cap *= 2) * sizeof *e);
            if (!bigger) return free(e), g4_fail(err, "tokenizer: out of memory");
            e = bigger;
        }
        if (t->text.pool_len + kn + 1 > t->text.pool_cap) {
            size_t pc = t->text.pool_cap ? t->text.pool_cap * 2 : (size_t)1 << 20;
            char *bigger = pc + kn < UINT32_MAX ? realloc(t->text.pool, pc + kn) : NULL;
            if (!bigger) return free(e), g4_fail(err, "tokenizer.json: vocabulary too large");
            t->text.pool = bigger;
            t->text.pool_cap = pc + kn;
        }
        memcpy(t->text.pool + t->text.pool_len, k, kn);
        e[n].off = (uint32_t)t->text.pool_len;
        e[n].len = (uint32_t)kn;
        t->text.pool_len += kn;
        int64_t id;
        if (tj_int(j, 0, INT32_MAX - 1, &id)) goto bad;
        e[n++].id = (int32_t)id;
        max_id = id > max_id ? id : max_id;
    }
    if (rc != 0) goto bad;
    /* Ids may leave gaps, but not room for a huge table. */
    if (max_id < 0) return free(e), g4_fail(err, "tokenizer.json: the vocabulary is empty");
    if ((uint64_t)max_id >= 2 * (uint64_t)n + 65536)
        return free(e), g4_fail(err, "tokenizer.json: token id %lld is out of range (the vocabulary has %zu tokens)",
                                (long long)max_id, n);
    if (tok_reserve_ids(t, (int32_t)(max_id + 1), 0)) return free(e), g4_fail(err, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t id = e[i].id;
        if (t->text.at[id].len != TOK_NO_TEXT)
            return free(e), g4_fail(err, "tokenizer.json: model.vocab gives id %d to two tokens", (int)id);
        t->text.at[id] = (tok_text_at){e[i].off, e[i].len};
        t->flags[id] |= TOKF_VOCAB;
    }
    free(e);
    return tok_index_vocab(t, err);
bad:
    free(e);
    return scan_fail(j, "model.vocab", err);
}

static void free_added(added_in *a, size_t n) {
    for (size_t i = 0; i < n; i++) free(a[i].content);
    free(a);
}

static int parse_added_in(tok_json *j, added_in **out, size_t *n_out, g4_error *err) {
    added_in *a = NULL;
    size_t n = 0, cap = 0, count = 0;
    int rc;
    if (tj_expect(j, '[')) goto bad;
    while ((rc = tj_arr_next(j, &count)) == 1) {
        if (n == cap) {
            added_in *bigger = realloc(a, (cap = cap ? 2 * cap : 64) * sizeof *a);
            if (!bigger) return free_added(a, n), g4_fail(err, "tokenizer: out of memory");
            a = bigger;
        }
        added_in *x = &a[n++];
        memset(x, 0, sizeof *x);
        x->id = -1;
        const char *k;
        size_t kn, members = 0;
        int single_word = 0, r;
        if (tj_expect(j, '{')) goto bad;
        while ((r = tj_obj_next(j, &members, &k, &kn)) == 1) {
            int64_t id;
            if (key_is(k, kn, "id")) {
                if (tj_int(j, 0, INT32_MAX - 1, &id)) goto bad;
                x->id = (int32_t)id;
            } else if (key_is(k, kn, "content")) {
                if (opt_string(j, &x->content, &x->len)) goto bad;
            } else if (key_is(k, kn, "special")) {
                if (tj_bool(j, &x->special)) goto bad;
            } else if (key_is(k, kn, "lstrip")) {
                if (tj_bool(j, &x->lstrip)) goto bad;
            } else if (key_is(k, kn, "rstrip")) {
                if (tj_bool(j, &x->rstrip)) goto bad;
            } else if (key_is(k, kn, "normalized")) {
                if (tj_bool(j, &x->normalized)) goto bad;
            } else if (key_is(k, kn, "single_word")) {
                if (tj_bool(j, &single_word)) goto bad;
            } else if (tj_skip(j)) {
                goto bad;
            }
        }
        if (r != 0) goto bad;
        if (x->id < 0 || !x->content)
            return free_added(a, n), g4_fail(err, "tokenizer.json: added_tokens[%zu] needs an \"id\" and a \"content\"", n - 1);
        if (single_word)
            return free_added(a, n),
                   g4_fail(err, "tokenizer.json: added_tokens[%zu]: single_word is not supported", n - 1);
    }
    if (rc == 0) {
        *out = a;
        *n_out = n;
        return 0;
    }
bad:
    free_added(a, n);
    return scan_fail(j, "added_tokens", err);
}

static int parse_added(tok_json *whole, span s, added_in **out, size_t *n_out, g4_error *err) {
    *out = NULL;
    *n_out = 0;
    if (!s.p) return 0;
    tok_json j;
    tj_span(&j, whole, s);
    int rc = parse_added_in(&j, out, n_out, err);
    tj_free(&j);
    return rc;
}

static int parse_merges(tok_json *j, g4_tokenizer *t, g4_error *err) {
    /* Sized by a guess from the bytes left (HF's pretty-printed pairs take
     * ~48 bytes a merge: 1/64 of the bytes fits 2^20 slots); the table grows
     * if the guess is short. */
    if (tok_merges_begin(t, (size_t)(j->end - j->p) / 64, err)) return -1;
    size_t count = 0, cap = 0;
    char *left = NULL; /* the first part of a pair, copied out of the scanner */
    tok_merge_batch batch = {0};
    int rc;
    if (tj_expect(j, '[')) goto bad;
    while ((rc = tj_arr_next(j, &count)) == 1) {
        if (count > UINT32_MAX) return free(left), tok_merges_drop(&batch), g4_fail(err, "tokenizer.json: too many merges");
        uint32_t rank = (uint32_t)(count - 1);
        const char *a, *b;
        size_t an, bn;
        int c = tj_peek(j);
        if (c == '"') { /* "left right" (tokenizers < 0.20) */
            const char *m;
            size_t mn;
            if (tj_string(j, &m, &mn)) goto bad;
            const char *sp = memchr(m, ' ', mn);
            if (!sp || memchr(sp + 1, ' ', mn - (size_t)(sp - m) - 1))
                return free(left), tok_merges_drop(&batch), g4_fail(err, "tokenizer.json: merge %u is not two tokens separated by one space", rank + 1);
            a = m, an = (size_t)(sp - m), b = sp + 1, bn = mn - an - 1;
        } else if (c == '[') { /* ["left", "right"] */
            j->p++;
            size_t parts = 0;
            int r = tj_arr_next(j, &parts);
            if (r != 1 || tj_string(j, &a, &an)) {
                if (r == 0) tj_fail(j, "a merge must have exactly two parts");
                goto bad;
            }
            if (an > cap) {
                char *bigger = realloc(left, an);
                if (!bigger) return free(left), tok_merges_drop(&batch), g4_fail(err, "tokenizer: out of memory");
                left = bigger;
                cap = an;
            }
            if (an) memcpy(left, a, an);
            a = left;
            r = tj_arr_next(j, &parts);
            if (r != 1 || tj_string(j, &b, &bn)) {
                if (r == 0) tj_fail(j, "a merge must have exactly two parts");
                goto bad;
            }
            if (tj_arr_next(j, &parts) != 0) {
                if (!j->err[0]) tj_fail(j, "a merge must have exactly two parts");
                goto bad;
            }
        } else {
            tj_fail(j, "a merge must be a string or a pair of strings");
            goto bad;
        }
        if (!an || !bn) return free(left), tok_merges_drop(&batch), g4_fail(err, "tokenizer.json: merge %u has an empty part", rank + 1);
        if (tok_add_merge(t, &batch, a, an, b, bn, rank, err)) return free(left), tok_merges_drop(&batch), -1;
    }
    free(left);
    if (rc == 0) return tok_merges_end(t, &batch, err);
    tok_merges_drop(&batch);
    return scan_fail(j, "model.merges", err);
bad:
    free(left);
    tok_merges_drop(&batch);
    return scan_fail(j, "model.merges", err);
}

/* Places the added tokens. HF ignores their "id" fields: a token whose
 * content is in the vocabulary takes that id, any other the next id past
 * the vocabulary size and the added tokens so far. A file whose ids say
 * otherwise would be read differently by HF and by its writer, so it is
 * refused. */
static int place_added(g4_tokenizer *t, const added_in *a, size_t n_added, g4_error *err) {
    int64_t vocab_len = 0, max_added = -1;
    for (int32_t id = 0; id < t->text.n; id++) vocab_len += (t->flags[id] & TOKF_VOCAB) != 0;
    for (size_t i = 0; i < n_added; i++) {
        int32_t id = a[i].id;
        int32_t in_vocab = tok_strmap_get(&t->vocab, &t->text, a[i].content, a[i].len);
        int64_t want = in_vocab >= 0          ? in_vocab
                       : max_added < 0         ? vocab_len
                       : max_added >= vocab_len ? max_added + 1
                                                : vocab_len;
        if (!a[i].len) return g4_fail(err, "tokenizer.json: added token %d has empty content", (int)id);
        size_t have_len;
        const char *have = id < t->text.n ? g4_tok_token_text(t, id, &have_len) : NULL;
        if (in_vocab < 0 && have && have_len == a[i].len && !memcmp(have, a[i].content, have_len))
            return g4_fail(err, "tokenizer.json: added token \"%.*s\" appears twice",
                           (int)(a[i].len < 40 ? a[i].len : 40), a[i].content);
        if (id != want)
            return g4_fail(err, "tokenizer.json: added token \"%.*s\" has id %d, but tokenizers gives it %lld",
                           (int)(a[i].len < 40 ? a[i].len : 40), a[i].content, (int)id, (long long)want);
        max_added = id > max_added ? id : max_added;
        if (tok_grow_ids(t, id + 1)) return g4_fail(err, "tokenizer: out of memory");
        if (in_vocab < 0 && tok_set_text(t, id, a[i].content, a[i].len, err)) return -1;
        if (tok_add_added(t, id, a[i].content, a[i].len, a[i].special, a[i].lstrip, a[i].rstrip, a[i].normalized,
                          err))
            return -1;
    }
    return 0;
}

static int load(tok_json *j, g4_tokenizer *t, g4_error *err) {
    span added = {0}, normalizer = {0}, pre = {0}, decoder = {0};
    model_cfg m = {0};
    int have_model = 0;
    const char *k;
    size_t kn, n = 0;
    int rc;
    if (tj_expect(j, '{')) return scan_fail(j, "top level", err);
    while ((rc = tj_obj_next(j, &n, &k, &kn)) == 1) {
        if (key_is(k, kn, "model")) {
            if (have_model) return free(m.unk), g4_fail(err, "tokenizer.json: key \"model\" appears twice");
            have_model = 1;
            if (parse_model(j, &m, t, err)) return free(m.unk), -1;
            continue;
        }
        span *s = key_is(k, kn, "added_tokens")    ? &added
                  : key_is(k, kn, "normalizer")    ? &normalizer
                  : key_is(k, kn, "pre_tokenizer") ? &pre
                  : key_is(k, kn, "decoder")       ? &decoder
                                                   : NULL;
        const char *name = s == &added ? "added_tokens" : s == &normalizer ? "normalizer" : s == &pre ? "pre_tokenizer"
                                                                                                      : "decoder";
        if (s ? take_span(j, s, name, err) : (tj_skip(j) ? scan_fail(j, "top level", err) : 0))
            return free(m.unk), -1;
    }
    if (!rc && tj_peek(j) != -1) rc = tj_fail(j, "data after the JSON object");
    if (rc) return free(m.unk), scan_fail(j, "top level", err);
    if (!have_model) return g4_fail(err, "tokenizer.json: no \"model\"");

    added_in *a = NULL;
    size_t n_added = 0;
    rc = tok_parse_normalizer(t, normalizer.p, normalizer.n, err) ||
         tok_parse_pre_tokenizer(t, pre.p, pre.n, err) || tok_parse_decoder(t, decoder.p, decoder.n, err) ||
         parse_added(j, added, &a, &n_added, err) || place_added(t, a, n_added, err);
    free_added(a, n_added);
    if (!rc && m.unk) {
        t->unk_id = tok_strmap_get(&t->vocab, &t->text, m.unk, m.unk_len);
        if (t->unk_id < 0) rc = g4_fail(err, "tokenizer.json: model.unk_token \"%s\" is not in the vocabulary", m.unk);
    }
    free(m.unk);
    if (rc) return -1;
    t->byte_fallback = m.byte_fallback;
    t->fuse_unk = m.fuse_unk;
    t->ignore_merges = m.ignore_merges;
    return tok_finish(t, err);
}

int g4_tok_load_json(const char *json, size_t len, g4_tokenizer **out, g4_error *err) {
    *out = NULL;
    g4_tokenizer *t = tok_alloc();
    if (!t) return g4_fail(err, "tokenizer: out of memory");
    tok_json j;
    tj_init(&j, json, len);
    int rc = load(&j, t, err);
    tj_free(&j);
    if (rc) {
        g4_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int g4_tok_load(const char *path, g4_tokenizer **out, g4_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return g4_fail(err, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return g4_fail(err, "cannot read %s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    /* Mapped, not read: the parser touches each page once. */
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) return g4_fail(err, "cannot map %s: %s", path, strerror(errno));
    int rc = g4_tok_load_json(map ? map : "", size, out, err);
    if (map) munmap(map, size);
    if (rc && err) { /* name the file once: "PATH: tokenizer.json: ..." */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        g4_fail(err, "%s: %s", path, msg);
    }
    return rc;
}
