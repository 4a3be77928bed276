/* One answer to a chat prompt: prefill (reusing the KV cache when the
 * prompt extends the text it holds), sample until a stop token, the end
 * marker, a stop string, the token limit or Ctrl-C, and stream the parsed
 * events. */
#include "cli/textgen.h"

#include "cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---- */

void gen_opts_init(gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->sampling = gemma4_sampler_default_params();
    o->n_predict = -1;
}

int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    static const char *const with_value[] = {"-n", "--n-predict", "--stop", "--temp", "--top-k", "--top-p", "--min-p", "--seed"};
    int ours = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) ours |= !strcmp(a, with_value[k]);
    if (!ours) return 0;
    if (!(v = arg_value(argc, argv, i))) return -1;
    int rc = 0;
    if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) rc = arg_int(a, v, -1, 1 << 30, &o->n_predict);
    else if (!strcmp(a, "--temp")) rc = arg_float(a, v, 0, 100, &o->sampling.temperature);
    else if (!strcmp(a, "--top-k")) rc = arg_int(a, v, 0, 1 << 30, &o->sampling.top_k);
    else if (!strcmp(a, "--top-p")) rc = arg_float(a, v, 1e-6, 1, &o->sampling.top_p);
    else if (!strcmp(a, "--min-p")) rc = arg_float(a, v, 0, 1, &o->sampling.min_p);
    else if (!strcmp(a, "--seed")) rc = arg_u64(a, v, &o->sampling.seed);
    else if (!*v) { fprintf(stderr, "gemma4: --stop: the text must not be empty\n"); rc = -1; }
    else if (o->n_stops == GEN_MAX_STOPS) { fprintf(stderr, "gemma4: at most %d --stop strings\n", GEN_MAX_STOPS); rc = -1; }
    else o->stops[o->n_stops++] = v;
    return rc ? -1 : 1;
}

/* ---- text buffers ---- */

int text_append(text_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

void text_free(text_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "gemma4: %s: %s\n", path, strerror(errno)); return NULL; }
    text_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = text_append(&b, "", 0);
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = text_append(&b, chunk, n);
    if (rc || ferror(f)) { fprintf(stderr, "gemma4: %s: cannot read\n", path); text_free(&b); }
    fclose(f);
    return b.p;
}

/* ---- Ctrl-C ---- */

volatile sig_atomic_t gen_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    gen_interrupted = 1;
}

void gen_catch_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- session ---- */

int session_open(session *s, const model_opts *mo, const gen_opts *go) {
    memset(s, 0, sizeof *s);
    if (!mo->model_path) { fprintf(stderr, "gemma4: no model given (-m PATH)\n"); return -1; }
    if (gemma4_model_load(mo->model_path, &s->model)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); return -1; }
    if (!(s->tok = gemma4_model_tokenizer(s->model))) {
        fprintf(stderr, "gemma4: %s has no tokenizer (tokenizer.json in the checkpoint, or tokenizer keys in the GGUF);\n"
                        "  give token ids to `gemma4 generate` instead\n", mo->model_path);
        session_close(s);
        return -1;
    }
    /* the context's default length, spelled out so answers can be kept within it */
    gemma4_context_params cp = mo->ctx;
    if (!cp.n_ctx) {
        gemma4_model_info in;
        gemma4_model_get_info(s->model, &in);
        cp.n_ctx = gemma4_context_default_params().n_ctx;
        if (cp.n_ctx > in.max_positions) cp.n_ctx = in.max_positions;
    }
    s->n_ctx = cp.n_ctx;
    if (gemma4_context_new(s->model, &cp, &s->ctx) || gemma4_sampler_new(&go->sampling, &s->sampler)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        session_close(s);
        return -1;
    }
    s->n_stop_ids = gemma4_chat_stop_tokens(s->model, s->stop_ids, 16);
    return 0;
}

void session_close(session *s) {
    gemma4_sampler_free(s->sampler);
    gemma4_context_free(s->ctx);
    gemma4_model_free(s->model);
    text_free(&s->cached);
    memset(s, 0, sizeof *s);
}

void session_reset(session *s) {
    gemma4_seq_clear(s->ctx, 0);
    s->cached.n = 0;
}

void answer_free(answer *a) {
    text_free(&a->content);
    text_free(&a->reasoning);
    json_decref(a->tool_calls);
    memset(a, 0, sizeof *a);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The stream of one answer: decoded text -> stop strings -> parser ->
 * (collect into the answer, show). */
typedef struct stream {
    answer *a;
    gemma4_stop *stop;
    gemma4_chat_parser *parser;
    gemma4_chat_event_fn show;
    void *show_ctx;
    int stopped, failed;
    int content_only;
} stream;

static void collect(void *user, const gemma4_chat_event *ev) {
    stream *st = user;
    answer *a = st->a;
    if (ev->kind == GEMMA4_CHAT_CONTENT) st->failed |= text_append(&a->content, ev->text, ev->len);
    else if (ev->kind == GEMMA4_CHAT_THOUGHT) st->failed |= text_append(&a->reasoning, ev->text, ev->len);
    else if (ev->kind == GEMMA4_CHAT_TOOL_CALL) {
        json_t *args = json_loads(ev->arguments, 0, NULL);
        json_t *call = json_pack("{s:s, s:o}", "name", ev->name, "arguments", args ? args : json_object());
        st->failed |= !call || json_array_append_new(a->tool_calls, call);
    }
    if (st->show) st->show(st->show_ctx, ev);
}

/* Text after the stop strings: to the chat parser, or straight to the
 * content when the answer is content only (a grammar without tool calls:
 * marker-like text inside a JSON string must stay text). */
static int deliver(stream *st, const char *text, size_t len) {
    if (!st->content_only) return gemma4_chat_parser_feed(st->parser, text, len);
    gemma4_chat_event ev = {.kind = GEMMA4_CHAT_CONTENT, .text = text, .len = len};
    collect(st, &ev);
    return 0;
}

static int feed(stream *st, const char *text, size_t len) {
    if (st->stopped || !len) return 0;
    if (st->stop) {
        const char *out;
        size_t n;
        int m = gemma4_stop_feed(st->stop, text, len, &out, &n);
        if (m < 0 || (n && deliver(st, out, n))) return -1;
        if (m == 1) st->stopped = 1;
    } else if (deliver(st, text, len)) {
        return -1;
    }
    if (gemma4_chat_parser_done(st->parser)) st->stopped = 1;
    return st->failed ? -1 : 0;
}

static int finish_stream(stream *st) {
    if (st->stop && !st->stopped) {
        const char *out;
        size_t n;
        gemma4_stop_flush(st->stop, &out, &n);
        if (n && deliver(st, out, n)) return -1;
    }
    return gemma4_chat_parser_finish(st->parser) || st->failed ? -1 : 0;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* Evaluates ids in chunks, so Ctrl-C is noticed during a long prefill. */
static int eval_interruptible(session *s, const int32_t *ids, size_t n, volatile sig_atomic_t *interrupt) {
    for (size_t done = 0; done < n;) {
        if (interrupt && *interrupt) return 1;
        size_t chunk = n - done < 256 ? n - done : 256;
        if (gemma4_eval(s->ctx, 0, ids + done, (int)chunk, NULL)) return -1;
        done += chunk;
    }
    return 0;
}

static int is_stop_id(const session *s, int32_t id) {
    for (int i = 0; i < s->n_stop_ids; i++)
        if (s->stop_ids[i] == id) return 1;
    return 0;
}

int session_answer(session *s, const char *prompt, const char *prefill, const gen_opts *o, gemma4_chat_event_fn show,
                   void *show_ctx, volatile sig_atomic_t *interrupt, answer *a) {
    memset(a, 0, sizeof *a);
    a->tool_calls = json_array();
    a->finish = "stop";
    text_buf full = {0};
    int32_t *ids = NULL, *gen = NULL;
    size_t n_ids = 0, n_gen = 0;
    gemma4_detokenizer *det = NULL;
    gemma4_matcher *matcher = NULL;
    float *masked = NULL;
    stream st = {a, NULL, NULL, show, show_ctx, 0, 0, o->grammar && o->grammar_content_only};
    int rc = -1, V = gemma4_vocab_size(s->model);
    size_t prompt_len = strlen(prompt);
    if (!a->tool_calls || text_append(&full, prompt, prompt_len) || (prefill && text_append(&full, prefill, strlen(prefill))))
        goto oom;

    /* Reuse the cache when the new prompt extends the text it holds. */
    int n_past = gemma4_seq_length(s->ctx, 0);
    size_t reuse = s->cached.n;
    if (!(n_past > 0 && reuse < full.n && !memcmp(full.p, s->cached.p, reuse))) {
        session_reset(s);
        n_past = 0;
        reuse = 0;
    }
    if (gemma4_tokenize(s->tok, full.p + reuse, full.n - reuse, GEMMA4_TOKENIZE_PARSE_SPECIAL, &ids, &n_ids)) goto lib_error;
    a->n_prompt_cached = n_past;
    a->n_prompt = n_past + (int)n_ids;
    if (a->n_prompt + 1 > s->n_ctx) {
        fprintf(stderr, "gemma4: the prompt (%d tokens) does not fit the context of %d tokens (--ctx)\n", a->n_prompt, s->n_ctx);
        goto done;
    }
    double t0 = now();
    int r = eval_interruptible(s, ids, n_ids, interrupt);
    a->prompt_s = now() - t0;
    if (r < 0) { session_reset(s); goto lib_error; }
    if (r > 0) { /* a partly evaluated prompt: start afresh next time */
        session_reset(s);
        a->finish = "interrupted";
        rc = 0;
        goto done;
    }
    s->cached.n = 0;
    if (text_append(&s->cached, full.p, full.n)) goto oom;

    int start_in_thought = ends_with(prompt, prompt_len, "<|channel>thought\n");
    if ((o->n_stops && gemma4_stop_new(o->stops, (size_t)o->n_stops, &st.stop)) ||
        gemma4_chat_parser_new(start_in_thought, collect, &st, &st.parser) || gemma4_detokenizer_new(s->tok, 0, &det))
        goto lib_error;
    if (prefill && feed(&st, prefill, strlen(prefill))) goto lib_error;
    if (!(gen = malloc(sizeof *gen * (size_t)(o->n_predict >= 0 ? o->n_predict + 1 : s->n_ctx + 1)))) goto oom;

    t0 = now();
    int limit = o->n_predict >= 0 ? o->n_predict : s->n_ctx;
    if (limit > s->n_ctx - gemma4_seq_length(s->ctx, 0)) limit = s->n_ctx - gemma4_seq_length(s->ctx, 0);
    if (o->grammar && (gemma4_matcher_new(o->grammar, &matcher) || gemma4_matcher_set_max_tokens(matcher, limit) ||
                       !(masked = malloc(sizeof *masked * (size_t)V))))
        goto lib_error;
    for (int k = 0; !st.stopped; k++) {
        if (interrupt && *interrupt) { a->finish = "interrupted"; break; }
        if (k >= limit || gemma4_seq_length(s->ctx, 0) >= s->n_ctx) { a->finish = "length"; break; }
        const float *logits = gemma4_get_logits(s->ctx, 0);
        if (matcher) {
            double tm = now();
            memcpy(masked, logits, sizeof *masked * (size_t)V);
            if (gemma4_matcher_mask(matcher, masked, V)) goto lib_error;
            a->mask_s += now() - tm;
            a->n_masks++;
            logits = masked;
        }
        int32_t id = gemma4_sample(s->sampler, logits, V);
        if (is_stop_id(s, id)) break;
        if (matcher && gemma4_matcher_accept(matcher, id)) goto lib_error;
        a->n_generated++;
        const char *piece;
        size_t len;
        if (gemma4_detokenizer_push(det, id, &piece, &len) || feed(&st, piece, len)) goto lib_error;
        if (st.stopped || k + 1 >= limit) break; /* no need to evaluate a token nothing follows */
        if (gemma4_eval(s->ctx, 0, &id, 1, NULL)) goto lib_error;
        gen[n_gen++] = id;
    }
    if (o->n_predict >= 0 && a->n_generated >= o->n_predict && !st.stopped && strcmp(a->finish, "interrupted"))
        a->finish = "length";
    const char *piece;
    size_t len;
    if (gemma4_detokenizer_finish(det, &piece, &len) || feed(&st, piece, len) || finish_stream(&st)) goto lib_error;
    a->gen_s = now() - t0;
    if (!strcmp(a->finish, "stop") && json_array_size(a->tool_calls)) a->finish = "tool_calls";

    /* The cache now also holds the evaluated answer tokens. */
    char *text = NULL;
    size_t text_len = 0;
    if (n_gen && gemma4_detokenize(s->tok, gen, n_gen, 0, &text, &text_len)) goto lib_error;
    int bad = text && text_append(&s->cached, text, text_len);
    gemma4_free(text);
    if (bad) goto oom;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "gemma4: out of memory\n");
    goto done;
lib_error:
    fprintf(stderr, "gemma4: %s\n", st.failed ? "out of memory" : gemma4_last_error());
done:
    if (rc) session_reset(s);
    gemma4_matcher_free(matcher);
    free(masked);
    gemma4_detokenizer_free(det);
    gemma4_chat_parser_free(st.parser);
    gemma4_stop_free(st.stop);
    gemma4_free(ids);
    free(gen);
    text_free(&full);
    return rc;
}

/* ---- display ---- */

#define DIM "\033[2m"
#define RESET "\033[0m"

void display_init(display *d, FILE *f) {
    d->f = f;
    d->tty = isatty(fileno(f));
    d->in_thought = 0;
    d->at_line_start = 1;
}

static void put(display *d, const char *s, size_t n) {
    if (!n) return;
    fwrite(s, 1, n, d->f);
    d->at_line_start = s[n - 1] == '\n';
}

static void end_thought(display *d) {
    if (!d->in_thought) return;
    if (d->tty) fputs(RESET, d->f);
    if (!d->at_line_start) put(d, "\n", 1);
    d->in_thought = 0;
}

void display_event(void *user, const gemma4_chat_event *ev) {
    display *d = user;
    switch (ev->kind) {
    case GEMMA4_CHAT_THOUGHT:
        if (!d->in_thought) {
            if (!d->at_line_start) put(d, "\n", 1);
            if (d->tty) fputs(DIM, d->f);
            d->in_thought = 1;
        }
        if (d->tty) {
            put(d, ev->text, ev->len);
        } else { /* "| " at the start of every line of the thought */
            for (size_t i = 0; i < ev->len;) {
                if (d->at_line_start) put(d, "| ", 2);
                const char *nl = memchr(ev->text + i, '\n', ev->len - i);
                size_t k = nl ? (size_t)(nl - (ev->text + i)) + 1 : ev->len - i;
                put(d, ev->text + i, k);
                i += k;
            }
        }
        break;
    case GEMMA4_CHAT_CONTENT:
        end_thought(d);
        put(d, ev->text, ev->len);
        break;
    case GEMMA4_CHAT_TOOL_CALL: {
        end_thought(d);
        if (!d->at_line_start) put(d, "\n", 1);
        json_t *args = json_loads(ev->arguments, 0, NULL);
        json_t *call = json_pack("{s:s, s:o}", "name", ev->name, "arguments", args ? args : json_object());
        char *s = call ? json_dumps(call, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        fprintf(d->f, "%stool_call %s%s\n", d->tty ? "\033[1m" : "", s ? s : ev->arguments, d->tty ? RESET : "");
        d->at_line_start = 1;
        free(s);
        json_decref(call);
        break;
    }
    case GEMMA4_CHAT_END:
        break;
    }
    fflush(d->f);
}

void display_end(display *d) {
    end_thought(d);
    if (!d->at_line_start) put(d, "\n", 1);
    fflush(d->f);
}
