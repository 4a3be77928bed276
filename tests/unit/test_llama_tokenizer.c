/* The tokenizer keys we write, read by llama.cpp (its prebuilt libllama,
 * driven by tests/interop/llama_tokenize): a `gemma4 synth --arch tiny
 * --tokenizer tokenizer.json` file with the real 262,144-token vocabulary
 * loads in llama.cpp as a BPE vocabulary with BOS 2 and EOS 1 (and as a
 * whole model: it computes 262,144 logits per token), and
 * llama.cpp's ids equal ours (`gemma4 tokenize -m` on the same file) on
 * every string of the parity corpus, with special tokens parsed or not and
 * with a BOS. Two llama.cpp behaviours differ from the Hugging Face
 * reference by design and are excluded, each counted:
 *  - it turns "</s>" (id 212, an added token not marked special, which
 *    Hugging Face and we match in any text) into a control token (its
 *    end-of-generation detection by text), so without parse_special it
 *    encodes "</s>" as plain text;
 *  - with add_special it adds a BOS even when the text starts with "<bos>"
 *    (we keep exactly one).
 * The tokenizer.json is Gemma 3's (tools/fetch_tokenizer.sh): Gemma 4's
 * ordinary tokens and merges. */
#include "check.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CORPUS "tests/data/tokenizer_corpus.jsonl"

static char bin[PATH_MAX], llama[PATH_MAX], llama_logits[PATH_MAX], llama_lib[PATH_MAX], tmp[64];

static int sh(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* The lines of a file (malloc'ed array of malloc'ed strings). */
static char **read_lines(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    char **lines = NULL, *line = NULL;
    size_t cap = 0, k = 0;
    ssize_t len;
    *n = 0;
    while (f && (len = getline(&line, &cap, f)) >= 0) {
        if (*n == k) lines = realloc(lines, sizeof *lines * (k = k ? 2 * k : 1024));
        if (len && line[len - 1] == '\n') line[len - 1] = 0;
        lines[(*n)++] = strdup(line);
    }
    free(line);
    if (f) fclose(f);
    return lines;
}

static void free_lines(char **l, size_t n) {
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
}

static void compare(const char *model, const char *mode, char **texts, size_t n_texts) {
    char cmd[3 * PATH_MAX], ours[128], theirs[128];
    snprintf(ours, sizeof ours, "%s/ours.txt", tmp);
    snprintf(theirs, sizeof theirs, "%s/theirs.txt", tmp);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --jsonl %s < %s/strings.jsonl > %s", bin, model, mode, tmp, ours);
    CHECK(sh(cmd) == 0, "gemma4 tokenize %s failed", mode);
    snprintf(cmd, sizeof cmd, "%s %s %s < %s/strings.jsonl > %s", llama, model, mode, tmp, theirs);
    CHECK(sh(cmd) == 0, "llama_tokenize %s failed", mode);
    size_t na, nb, same = 0, slash_s = 0, double_bos = 0, differ = 0;
    char **a = read_lines(ours, &na), **b = read_lines(theirs, &nb);
    CHECK(na == n_texts && nb == n_texts, "%s: %zu and %zu lines for %zu strings", mode, na, nb, n_texts);
    for (size_t i = 0; i < na && i < nb && i < n_texts; i++) {
        if (!strcmp(a[i], b[i])) { same++; continue; }
        json_t *t = json_loads(texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        const char *s = json_string_value(t);
        size_t len = json_string_length(t);
        if (s && memmem(s, len, "</s>", 4)) slash_s++;
        else if (s && !strcmp(mode, "--bos") && len >= 5 && !memcmp(s, "<bos>", 5)) double_bos++;
        else if (++differ <= 5) CHECK(0, "%s: line %zu: %s\n  gemma4    %s\n  llama.cpp %s", mode, i + 1, texts[i], a[i], b[i]);
        json_decref(t);
    }
    printf("  llama.cpp tokenizer %-12s: %zu of %zu strings identical; excluded: %zu with \"</s>\", %zu starting with <bos>; %zu differ\n",
           *mode ? mode : "(specials)", same, n_texts, slash_s, double_bos, differ);
    CHECK(differ == 0, "%s: %zu strings tokenize differently", mode, differ);
    CHECK(same >= n_texts * 99 / 100, "%s: only %zu of %zu identical", mode, same, n_texts);
    free_lines(a, na);
    free_lines(b, nb);
}

int main(void) {
    const char *b = getenv("GEMMA4") ? getenv("GEMMA4") : "build/gemma4";
    const char *ll = getenv("LLAMA_TOKENIZE") ? getenv("LLAMA_TOKENIZE") : "build/tests/llama_tokenize";
    const char *tok = getenv("G4_TOKENIZER_JSON") ? getenv("G4_TOKENIZER_JSON") : "build/tokenizer/tokenizer.json";
    const char *lg = getenv("LLAMA_LOGITS") ? getenv("LLAMA_LOGITS") : "build/tests/llama_logits";
    const char *dir = getenv("G4_LLAMA_DIR") ? getenv("G4_LLAMA_DIR") : "build/llama";
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s/package/bins/linux-x64", dir);
    if (!realpath(b, bin) || !realpath(ll, llama) || !realpath(lg, llama_logits) || !realpath(lib, llama_lib) || access(tok, R_OK)) {
        fprintf(stderr, "test_llama_tokenizer: needs %s, %s, %s (tools/fetch_llama.sh, make) and %s (tools/fetch_tokenizer.sh)\n", b, ll,
                lg, tok);
        return 1;
    }
    strcpy(tmp, "/tmp/g4lltokXXXXXX");
    if (!mkdtemp(tmp)) return 1;
    char cmd[4 * PATH_MAX], model[128], info[256] = "";
    snprintf(model, sizeof model, "%s/tiny.gguf", tmp);
    snprintf(cmd, sizeof cmd, "%s synth --arch tiny --type q8_0 --tokenizer %s -o %s 2>/dev/null", bin, tok, model);
    CHECK(sh(cmd) == 0, "synth failed");

    snprintf(cmd, sizeof cmd, "%s %s --info", llama, model);
    FILE *p = popen(cmd, "r");
    if (p && !fgets(info, sizeof info, p)) info[0] = 0;
    if (p) pclose(p);
    int n_vocab = 0, type = 0, bos = -1, eos = -1;
    CHECK(sscanf(info, "n_vocab %d type %d bos %d eos %d", &n_vocab, &type, &bos, &eos) == 4 && n_vocab == 262144 &&
              type == 2 && bos == 2 && eos == 1,
          "llama.cpp sees: %s", info);
    printf("  llama.cpp loads the synth file: %s", info);

    /* the whole model: llama.cpp runs it over ids of the real vocabulary */
    char logits[160];
    snprintf(logits, sizeof logits, "%s/llama.f32", tmp);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s 2,9259,236764,4109,236888 %s 2 2>/dev/null", llama_lib, llama_logits, model, logits);
    FILE *lf = sh(cmd) == 0 ? fopen(logits, "rb") : NULL;
    long size = lf && !fseek(lf, 0, SEEK_END) ? ftell(lf) : -1;
    if (lf) fclose(lf);
    CHECK(size == 5L * 262144 * 4, "llama.cpp did not run the model (%ld bytes of logits)", size);

    /* the corpus strings, one JSON string per line */
    size_t n_lines;
    char **lines = read_lines(CORPUS, &n_lines), **texts = malloc(sizeof *texts * (n_lines ? n_lines : 1));
    snprintf(cmd, sizeof cmd, "%s/strings.jsonl", tmp);
    FILE *f = fopen(cmd, "w");
    size_t n_texts = 0;
    for (size_t i = 0; f && i < n_lines; i++) {
        json_t *o = json_loads(lines[i], JSON_ALLOW_NUL, NULL);
        char *s = json_dumps(json_object_get(o, "text"), JSON_ENCODE_ANY | JSON_COMPACT);
        if (s) { fprintf(f, "%s\n", s); texts[n_texts++] = s; }
        json_decref(o);
    }
    if (f) fclose(f);
    CHECK(n_texts == n_lines && n_texts >= 2000, "corpus: %zu strings", n_texts);
    compare(model, "", texts, n_texts);
    compare(model, "--no-special", texts, n_texts);
    compare(model, "--bos", texts, n_texts);

    for (size_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free_lines(lines, n_lines);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    sh(cmd);
    return check_exit("test_llama_tokenizer");
}
