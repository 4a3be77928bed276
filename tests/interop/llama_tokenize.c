/* Tokenizes with llama.cpp (its prebuilt libllama, vocabulary only) the
 * tokenizer of a GGUF file: the second implementation tests/unit/
 * test_llama_tokenizer.c compares our ids with. Reads one JSON string per
 * line on stdin and writes one JSON array of ids per line, like
 * `gemma4 tokenize --jsonl`.
 *
 *   llama_tokenize MODEL.gguf [--bos] [--no-special]   ids, as above
 *   llama_tokenize MODEL.gguf --info                    "n_vocab N type T bos B eos E eog 1,106,50"
 *
 * --bos: llama.cpp's add_special (BOS for Gemma 4); --no-special: its
 * parse_special = false (USER_DEFINED tokens still match, CONTROL ones do
 * not). */
#include "llama.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static void info(const struct llama_vocab *vocab) {
    int n = llama_vocab_n_tokens(vocab);
    printf("n_vocab %d type %d bos %d eos %d eog", n, (int)llama_vocab_type(vocab), llama_vocab_bos(vocab),
           llama_vocab_eos(vocab));
    const char *sep = " ";
    for (int id = 0; id < n; id++)
        if (llama_vocab_is_eog(vocab, id)) { printf("%s%d", sep, id); sep = ","; }
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: llama_tokenize MODEL.gguf [--bos] [--no-special] [--info] < strings.jsonl\n");
        return 2;
    }
    int add_bos = 0, parse_special = 1, want_info = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--bos")) add_bos = 1;
        else if (!strcmp(argv[i], "--no-special")) parse_special = 0;
        else if (!strcmp(argv[i], "--info")) want_info = 1;
        else { fprintf(stderr, "llama_tokenize: unknown option %s\n", argv[i]); return 2; }
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "llama.cpp could not load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    if (want_info) {
        info(vocab);
        llama_model_free(model);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (long n = 1; rc == 0 && (len = getline(&line, &cap, stdin)) >= 0; n++) {
        json_error_t jerr;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!json_is_string(s)) {
            fprintf(stderr, "llama_tokenize: line %ld: expected a JSON string\n", n);
            rc = 1;
        } else {
            const char *text = json_string_value(s);
            int32_t text_len = (int32_t)json_string_length(s), max = text_len + 8;
            llama_token *ids = malloc(sizeof *ids * (size_t)max);
            int32_t k = ids ? llama_tokenize(vocab, text, text_len, ids, max, add_bos, parse_special) : -1;
            if (k < 0) {
                fprintf(stderr, "llama_tokenize: line %ld: tokenize failed (%d)\n", n, (int)k);
                rc = 1;
            } else {
                putchar('[');
                for (int32_t i = 0; i < k; i++) printf(i ? ",%d" : "%d", ids[i]);
                puts("]");
            }
            free(ids);
        }
        json_decref(s);
    }
    free(line);
    llama_model_free(model);
    return rc;
}
