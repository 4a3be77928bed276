#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int g4_model_load(const char *path, g4_model **out, g4_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return g4_fail(err, "%s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode)) return g4_fail(err, "%s: not a checkpoint directory (GGUF files are not supported yet)", path);
    g4_model *m = calloc(1, sizeof *m);
    if (!m) return g4_fail(err, "out of memory");
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
    if (g4_config_load(cfg_path, &m->cfg, err) || ckpt_open(path, &m->ckpt, err) ||
        g4_weights_bind(&m->w, &m->cfg, m->ckpt, err)) {
        g4_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void g4_model_free(g4_model *m) {
    if (!m) return;
    g4_weights_free(&m->w, &m->cfg);
    if (m->ckpt) ckpt_close(m->ckpt);
    g4_config_free(&m->cfg);
    free(m);
}
