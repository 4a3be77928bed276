/* gemma4 tokenize / gemma4 detokenize: text <-> token ids with a
 * tokenizer.json or a model's own tokenizer; --jsonl is the batch form for
 * tests and tools (one JSON value per line in, one per line out). */
#include "cli/args.h"
#include "cli/common.h"
#include "cli/textgen.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_source {
    const char *tokenizer_path, *model_path;
    gemma4_tokenizer *own;
    gemma4_model *model;
    const gemma4_tokenizer *tok;
} tok_source;

#define TOK_SOURCE_HELP \
    "      --tokenizer PATH a Hugging Face tokenizer.json\n" \
    "  -m, --model PATH     or the tokenizer of this model (checkpoint directory or GGUF)\n"

/* 1 consumed, 0 not ours, -1 bad. */
static int source_parse(tok_source *s, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char **dst = !strcmp(a, "--tokenizer") ? &s->tokenizer_path
                       : !strcmp(a, "-m") || !strcmp(a, "--model") ? &s->model_path : NULL;
    if (!dst) return 0;
    return (*dst = arg_value(argc, argv, i)) ? 1 : -1;
}

/* 0 when exactly one source is given. */
static int source_check(const tok_source *s, const char *cmd) {
    if (!s->tokenizer_path != !s->model_path) return 0;
    fprintf(stderr, "gemma4 %s: give one of --tokenizer tokenizer.json or -m MODEL\n", cmd);
    return -1;
}

static int source_open(tok_source *s) {
    if (s->tokenizer_path) {
        if (gemma4_tokenizer_load(s->tokenizer_path, &s->own)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); return -1; }
        s->tok = s->own;
        return 0;
    }
    if (gemma4_model_load(s->model_path, &s->model)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); return -1; }
    if (!(s->tok = gemma4_model_tokenizer(s->model))) {
        fprintf(stderr, "gemma4: %s has no tokenizer\n", s->model_path);
        return -1;
    }
    return 0;
}

static void source_close(tok_source *s) {
    gemma4_tokenizer_free(s->own);
    gemma4_model_free(s->model);
}

static char *read_all(FILE *f, size_t *len) {
    text_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = text_append(&b, "", 0);
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = text_append(&b, chunk, n);
    if (rc || ferror(f)) { text_free(&b); return NULL; }
    *len = b.n;
    return b.p;
}

/* ---- tokenize ---- */

static void tokenize_help(void) {
    printf("usage: gemma4 tokenize (--tokenizer tokenizer.json | -m MODEL) [--file FILE | --text TEXT] [--bos]\n"
           "       gemma4 tokenize (--tokenizer tokenizer.json | -m MODEL) --jsonl [--bos] < strings.jsonl\n\n"
           "Prints the token ids of the text, space-separated on one line. With --jsonl, reads one JSON\n"
           "string per line on stdin and writes one JSON array of ids per line.\n\n" TOK_SOURCE_HELP
           "      --file FILE      the text to tokenize (default: stdin)\n"
           "      --text TEXT      or this text\n"
           "      --bos            start with the BOS token\n"
           "      --no-special     special-token texts (\"<bos>\", \"<|turn>\", ...) are plain text; by default\n"
           "                       they become their ids, as Hugging Face tokenizers do\n"
           "      --jsonl          batch mode (see above)\n");
}

static int print_ids(const gemma4_tokenizer *tok, const char *text, size_t len, int flags, int jsonl) {
    int32_t *ids;
    size_t n;
    if (gemma4_tokenize(tok, text, len, flags, &ids, &n)) return -1;
    if (jsonl) putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? (jsonl ? ",%d" : " %d") : "%d", ids[i]);
    puts(jsonl ? "]" : "");
    gemma4_free(ids);
    return 0;
}

static int tokenize_jsonl(const gemma4_tokenizer *tok, int flags) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (long n = 1; !rc && (len = getline(&line, &cap, stdin)) >= 0; n++) {
        json_error_t jerr;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!json_is_string(s)) {
            fprintf(stderr, "gemma4 tokenize: line %ld: expected a JSON string%s%s\n", n, s ? "" : ": ", s ? "" : jerr.text);
            rc = -1;
        } else if (print_ids(tok, json_string_value(s), json_string_length(s), flags, 1)) {
            fprintf(stderr, "gemma4 tokenize: line %ld: %s\n", n, gemma4_last_error());
            rc = -1;
        }
        json_decref(s);
    }
    free(line);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tok_source src = {0};
    const char *file = NULL, *text = NULL;
    int flags = GEMMA4_TOKENIZE_PARSE_SPECIAL, jsonl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { tokenize_help(); return 0; }
        int r = source_parse(&src, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--bos")) flags |= GEMMA4_TOKENIZE_ADD_BOS;
        else if (!strcmp(a, "--no-special")) flags &= ~GEMMA4_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(a, "--jsonl")) jsonl = 1;
        else if (!strcmp(a, "--file")) { if (!(file = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text")) { if (!(text = arg_value(argc, argv, &i))) return 2; }
        else { fprintf(stderr, "gemma4 tokenize: unknown option %s\n", a); return 2; }
    }
    if ((file && text) || (jsonl && (file || text))) { fprintf(stderr, "gemma4 tokenize: give one input: --file, --text or --jsonl on stdin\n"); return 2; }
    if (source_check(&src, "tokenize")) return 2;
    if (source_open(&src)) { source_close(&src); return 1; }
    int rc = 1;
    if (jsonl) {
        rc = tokenize_jsonl(src.tok, flags) ? 1 : 0;
    } else {
        size_t len = text ? strlen(text) : 0;
        char *owned = NULL;
        FILE *f = file ? fopen(file, "rb") : stdin;
        if (!text && !f) fprintf(stderr, "gemma4: %s: %s\n", file, strerror(errno));
        else if (!text && !(owned = read_all(f, &len))) fprintf(stderr, "gemma4: %s: cannot read\n", file ? file : "stdin");
        else if (print_ids(src.tok, text ? text : owned, len, flags, 0)) fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        else rc = 0;
        if (f && f != stdin) fclose(f);
        free(owned);
    }
    source_close(&src);
    return rc;
}

/* ---- detokenize ---- */

static void detokenize_help(void) {
    printf("usage: gemma4 detokenize (--tokenizer tokenizer.json | -m MODEL) [--ids 2,17,301 | --file FILE]\n"
           "       gemma4 detokenize (--tokenizer tokenizer.json | -m MODEL) --jsonl < ids.jsonl\n\n"
           "Prints the text of token ids (exactly, with no newline added). The ids come from --ids, or\n"
           "from a file or stdin, separated by spaces, commas or newlines. With --jsonl, reads one JSON\n"
           "array of ids per line on stdin and writes one JSON string per line.\n\n" TOK_SOURCE_HELP
           "      --ids LIST       comma-separated ids\n"
           "      --file FILE      read the ids from FILE (default: stdin)\n"
           "      --skip-special   leave out special tokens (default: shown as their text)\n"
           "      --jsonl          batch mode (see above)\n");
}

/* Ids separated by spaces, commas or newlines. */
static int parse_ids(const char *s, int32_t **out, size_t *n_out) {
    size_t n = 0, cap = 64;
    int32_t *ids = malloc(sizeof *ids * cap);
    while (ids && *s) {
        if (isspace((unsigned char)*s) || *s == ',') { s++; continue; }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || (*end && !isspace((unsigned char)*end) && *end != ',')) {
            fprintf(stderr, "gemma4 detokenize: expected token ids, got \"%.20s\"\n", s);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *more = realloc(ids, sizeof *ids * (cap *= 2));
            if (!more) { free(ids); ids = NULL; break; }
            ids = more;
        }
        ids[n++] = (int32_t)v;
        s = end;
    }
    if (!ids) { fprintf(stderr, "gemma4: out of memory\n"); return -1; }
    *out = ids;
    *n_out = n;
    return 0;
}

static int detokenize_jsonl(const gemma4_tokenizer *tok, int skip_special) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (long n = 1; !rc && (len = getline(&line, &cap, stdin)) >= 0; n++) {
        json_t *arr = json_loadb(line, (size_t)len, 0, NULL);
        size_t k = json_array_size(arr);
        int32_t *ids = malloc(sizeof *ids * (k ? k : 1));
        for (size_t i = 0; ids && i < k; i++) {
            json_t *v = json_array_get(arr, i);
            json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
            if (id < 0 || id > INT32_MAX) rc = -1;
            ids[i] = (int32_t)id;
        }
        char *text = NULL;
        size_t text_len;
        if (!json_is_array(arr) || rc || !ids) {
            fprintf(stderr, "gemma4 detokenize: line %ld: expected a JSON array of token ids\n", n);
            rc = -1;
        } else if (gemma4_detokenize(tok, ids, k, skip_special, &text, &text_len)) {
            fprintf(stderr, "gemma4 detokenize: line %ld: %s\n", n, gemma4_last_error());
            rc = -1;
        } else {
            json_t *s = json_stringn(text, text_len);
            char *out = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
            if (out) puts(out);
            else { fprintf(stderr, "gemma4 detokenize: line %ld: the text is not valid UTF-8\n", n); rc = -1; }
            free(out);
            json_decref(s);
        }
        gemma4_free(text);
        free(ids);
        json_decref(arr);
    }
    free(line);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    tok_source src = {0};
    const char *file = NULL, *list = NULL;
    int skip_special = 0, jsonl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { detokenize_help(); return 0; }
        int r = source_parse(&src, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--skip-special")) skip_special = 1;
        else if (!strcmp(a, "--jsonl")) jsonl = 1;
        else if (!strcmp(a, "--file")) { if (!(file = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--ids")) { if (!(list = arg_value(argc, argv, &i))) return 2; }
        else { fprintf(stderr, "gemma4 detokenize: unknown option %s\n", a); return 2; }
    }
    if ((file && list) || (jsonl && (file || list))) { fprintf(stderr, "gemma4 detokenize: give one input: --ids, --file or --jsonl on stdin\n"); return 2; }
    if (source_check(&src, "detokenize")) return 2;
    if (source_open(&src)) { source_close(&src); return 1; }
    int rc = 1;
    if (jsonl) {
        rc = detokenize_jsonl(src.tok, skip_special) ? 1 : 0;
    } else {
        char *owned = NULL, *text = NULL;
        size_t len = 0, n_ids = 0;
        int32_t *ids = NULL;
        FILE *f = list ? NULL : file ? fopen(file, "rb") : stdin;
        if (!list && !f) fprintf(stderr, "gemma4: %s: %s\n", file, strerror(errno));
        else if (!list && !(owned = read_all(f, &len))) fprintf(stderr, "gemma4: %s: cannot read\n", file ? file : "stdin");
        else if (parse_ids(list ? list : owned, &ids, &n_ids)) { /* reported */ }
        else if (gemma4_detokenize(src.tok, ids, n_ids, skip_special, &text, &len)) fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        else rc = fwrite(text, 1, len, stdout) == len ? 0 : 1;
        if (f && f != stdin) fclose(f);
        gemma4_free(text);
        free(ids);
        free(owned);
    }
    source_close(&src);
    return rc;
}
