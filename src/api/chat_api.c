/* The public text API (include/gemma4.h, "text" section): the tokenizer,
 * chat prompt rendering, the streaming output parser and stop strings, over
 * src/tok and src/chat. */
#include "api/api_internal.h"

#include "chat/output_parser.h"
#include "chat/stop.h"
#include "chat/template.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ERR g4_api_error()

static int fail(const char *msg) { return g4_fail(ERR, "%s", msg); }

void gemma4_free(void *p) { free(p); }

/* ---- tokenizer ---- */

const gemma4_tokenizer *gemma4_model_tokenizer(const gemma4_model *model) {
    return model && model->tok.tok ? &model->tok : NULL;
}

int gemma4_tokenizer_load(const char *tokenizer_json, gemma4_tokenizer **out) {
    *out = NULL;
    gemma4_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return fail("out of memory");
    if (g4_tok_load(tokenizer_json, &t->tok, ERR)) { free(t); return -1; }
    t->bos_id = g4_tok_token_id(t->tok, "<bos>");
    t->owned = 1;
    *out = t;
    return 0;
}

void gemma4_tokenizer_free(gemma4_tokenizer *tok) {
    if (!tok || !tok->owned) return;
    g4_tok_free(tok->tok);
    free(tok);
}

int32_t gemma4_tokenizer_n_vocab(const gemma4_tokenizer *tok) { return g4_tok_n_vocab(tok->tok); }

int32_t gemma4_token_id(const gemma4_tokenizer *tok, const char *text) { return g4_tok_token_id(tok->tok, text); }

const char *gemma4_token_text(const gemma4_tokenizer *tok, int32_t id, size_t *len) {
    size_t n = 0;
    const char *s = g4_tok_token_text(tok->tok, id, &n);
    if (len) *len = s ? n : 0;
    return s;
}

int32_t gemma4_token_bos(const gemma4_tokenizer *tok) { return tok->bos_id; }

int gemma4_tokenize(const gemma4_tokenizer *tok, const char *text, size_t len, int flags, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int32_t *got;
    size_t n;
    if (g4_tok_encode(tok->tok, text, len, (flags & GEMMA4_TOKENIZE_PARSE_SPECIAL) != 0, &got, &n, ERR)) return -1;
    int add_bos = (flags & GEMMA4_TOKENIZE_ADD_BOS) && tok->bos_id >= 0 && !(n && got[0] == tok->bos_id);
    if (add_bos) {
        int32_t *more = realloc(got, sizeof *got * (n + 1));
        if (!more) { free(got); return fail("out of memory"); }
        got = more;
        memmove(got + 1, got, sizeof *got * n);
        got[0] = tok->bos_id;
        n++;
    }
    *ids = got;
    *n_ids = n;
    return 0;
}

int gemma4_detokenize(const gemma4_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                      size_t *len) {
    size_t n = 0;
    *text = NULL;
    if (g4_tok_decode(tok->tok, ids, n_ids, skip_special, text, &n, ERR)) return -1;
    if (len) *len = n;
    return 0;
}

struct gemma4_detokenizer {
    g4_tok_decoder *d;
};

int gemma4_detokenizer_new(const gemma4_tokenizer *tok, int skip_special, gemma4_detokenizer **out) {
    *out = NULL;
    gemma4_detokenizer *d = calloc(1, sizeof *d);
    if (!d) return fail("out of memory");
    if (g4_tok_decoder_new(tok->tok, skip_special, &d->d, ERR)) { free(d); return -1; }
    *out = d;
    return 0;
}

int gemma4_detokenizer_push(gemma4_detokenizer *d, int32_t id, const char **text, size_t *len) {
    return g4_tok_decoder_push(d->d, id, text, len, ERR);
}

int gemma4_detokenizer_finish(gemma4_detokenizer *d, const char **text, size_t *len) {
    return g4_tok_decoder_finish(d->d, text, len, ERR);
}

void gemma4_detokenizer_free(gemma4_detokenizer *d) {
    if (!d) return;
    g4_tok_decoder_free(d->d);
    free(d);
}

/* ---- chat prompts ---- */

gemma4_chat_params gemma4_chat_default_params(void) {
    gemma4_chat_params p = {0};
    p.add_generation_prompt = 1;
    p.empty_thought_prefill = GEMMA4_AUTO;
    return p;
}

static json_t *parse_array(const char *text, const char *what) {
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v) g4_fail(ERR, "%s: invalid JSON at line %d: %s", what, jerr.line, jerr.text);
    else if (!json_is_array(v)) { g4_fail(ERR, "%s: expected a JSON array", what); json_decref(v); v = NULL; }
    return v;
}

int gemma4_chat_render(const gemma4_model *model, const char *messages_json, const char *tools_json,
                       const gemma4_chat_params *params, char **prompt) {
    *prompt = NULL;
    gemma4_chat_params p = params ? *params : gemma4_chat_default_params();
    if (!messages_json) return fail("chat: no messages");
    json_t *messages = parse_array(messages_json, "messages"), *tools = NULL;
    if (!messages) return -1;
    if (tools_json && !(tools = parse_array(tools_json, "tools"))) { json_decref(messages); return -1; }
    /* 12B / 26B-A4B / 31B get the empty thought block; E2B / E4B (the
     * models with per-layer inputs) must not. */
    int prefill = p.empty_thought_prefill == GEMMA4_AUTO ? model && model->m->cfg.ple_dim == 0 : p.empty_thought_prefill != 0;
    g4_chat_options opt = {
        .enable_thinking = p.enable_thinking != 0, .preserve_thinking = p.preserve_thinking != 0,
        .add_generation_prompt = p.add_generation_prompt != 0, .empty_thought_prefill = prefill,
    };
    int rc = g4_chat_render(messages, tools, &opt, prompt, ERR);
    json_decref(messages);
    json_decref(tools);
    return rc;
}

int gemma4_chat_stop_tokens(const gemma4_model *model, int32_t *ids, int cap) {
    const g4_config *c = &model->m->cfg;
    int32_t cand[16];
    int n_cand = 0, n = 0;
    for (int i = 0; i < c->n_eos_token_ids && n_cand < 8; i++) cand[n_cand++] = c->eos_token_ids[i];
    static const char *const markers[] = {"<eos>", "<turn|>", "<|tool_response>"};
    for (size_t i = 0; model->tok.tok && i < sizeof markers / sizeof *markers; i++)
        cand[n_cand++] = g4_tok_token_id(model->tok.tok, markers[i]);
    for (int i = 0; i < n_cand; i++) {
        int dup = cand[i] < 0 || cand[i] >= c->vocab_size;
        for (int k = 0; k < n && !dup; k++) dup = ids[k] == cand[i];
        if (!dup && n < cap) ids[n++] = cand[i];
    }
    return n;
}

/* ---- output parser ---- */

struct gemma4_chat_parser {
    g4_chat_parser *p;
    gemma4_chat_event_fn fn;
    void *user;
};

static void forward_event(void *user, const g4_chat_event *ev) {
    const gemma4_chat_parser *p = user;
    gemma4_chat_event out = {.text = ev->text, .len = ev->len, .name = ev->name, .arguments = ev->arguments};
    switch (ev->kind) {
    case G4_CHAT_CONTENT: out.kind = GEMMA4_CHAT_CONTENT; break;
    case G4_CHAT_THOUGHT: out.kind = GEMMA4_CHAT_THOUGHT; break;
    case G4_CHAT_TOOL_CALL: out.kind = GEMMA4_CHAT_TOOL_CALL; break;
    case G4_CHAT_END: out.kind = GEMMA4_CHAT_END; if (out.text && !out.len) out.len = strlen(out.text); break;
    }
    p->fn(p->user, &out);
}

int gemma4_chat_parser_new(int start_in_thought, gemma4_chat_event_fn on_event, void *user, gemma4_chat_parser **out) {
    *out = NULL;
    if (!on_event) return fail("chat parser: no event callback");
    gemma4_chat_parser *p = calloc(1, sizeof *p);
    g4_chat_parser_options opt = {.start_in_thought = start_in_thought != 0};
    if (!p || !(p->p = g4_chat_parser_new(&opt, forward_event, p))) { free(p); return fail("out of memory"); }
    p->fn = on_event;
    p->user = user;
    *out = p;
    return 0;
}

int gemma4_chat_parser_feed(gemma4_chat_parser *p, const char *text, size_t len) {
    return g4_chat_parser_feed(p->p, text, len, ERR);
}

int gemma4_chat_parser_finish(gemma4_chat_parser *p) { return g4_chat_parser_finish(p->p, ERR); }

int gemma4_chat_parser_done(const gemma4_chat_parser *p) { return g4_chat_parser_done(p->p); }

void gemma4_chat_parser_free(gemma4_chat_parser *p) {
    if (!p) return;
    g4_chat_parser_free(p->p);
    free(p);
}

/* ---- stop strings ---- */

struct gemma4_stop {
    g4_stop_matcher *m;
};

int gemma4_stop_new(const char *const *stops, size_t n_stops, gemma4_stop **out) {
    *out = NULL;
    gemma4_stop *s = calloc(1, sizeof *s);
    if (!s) return fail("out of memory");
    if (!(s->m = g4_stop_new(stops, n_stops, ERR))) { free(s); return -1; }
    *out = s;
    return 0;
}

int gemma4_stop_feed(gemma4_stop *s, const char *text, size_t len, const char **out, size_t *out_len) {
    return g4_stop_feed(s->m, text, len, out, out_len, ERR);
}

void gemma4_stop_flush(gemma4_stop *s, const char **out, size_t *out_len) { g4_stop_flush(s->m, out, out_len); }

void gemma4_stop_free(gemma4_stop *s) {
    if (!s) return;
    g4_stop_free(s->m);
    free(s);
}
