#include "model/model.h"

#include "model/gguf_hparams.h"
#include "model/model_tokenizer.h"
#include "model/repack.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int g4_model_load(const char *path, g4_model **out, g4_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return g4_fail(err, "%s: no such file or directory", path);
    g4_model *m = calloc(1, sizeof *m);
    if (!m) return g4_fail(err, "out of memory");
    int rc;
    if (S_ISDIR(st.st_mode)) {
        char cfg_path[4096];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
        rc = g4_config_load(cfg_path, &m->cfg, err) || ckpt_open(path, &m->ckpt, err);
    } else {
        rc = gguf_open(path, &m->gguf, err) || g4_config_from_gguf(m->gguf, &m->cfg, err);
    }
    /* G4_REPACK=0 keeps GGML's layout (tests of the layout's consumers) */
    const char *repack = getenv("G4_REPACK");
    int keep_layout = repack && atoi(repack) == 0;
    if (rc || g4_weights_bind(&m->w, &m->cfg, m->ckpt, m->gguf, err) ||
        (!keep_layout && g4_weights_repack(&m->w, &m->cfg, err)) ||
        g4_model_tokenizer_load(path, m->gguf, &m->tok, err)) {
        g4_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void g4_model_free(g4_model *m) {
    if (!m) return;
    g4_weights_free(&m->w, &m->cfg);
    g4_tok_free(m->tok);
    if (m->ckpt) ckpt_close(m->ckpt);
    if (m->gguf) gguf_close(m->gguf);
    g4_config_free(&m->cfg);
    free(m);
}
