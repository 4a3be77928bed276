/* libFuzzer target for the config.json parser (src/model/config.c): any bytes
 * must give either a config whose per-layer facts are consistent or an error
 * message, never a crash. Build and run: tests/fuzz/README.md. */
#include <stdint.h>
#include <stdlib.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g4_config c;
    g4_error err;
    if (g4_config_parse((const char *)data, size, &c, &err) != 0) {
        if (!err.msg[0] || c.layer) abort();
        return 0;
    }
    for (int l = 0; l < c.n_layers; l++) {
        const g4_layer_config *lc = &c.layer[l];
        const g4_layer_config *src = &c.layer[lc->kv_source];
        if (lc->kv_source < 0 || lc->kv_source > l || lc->head_dim <= 0 || lc->head_dim % 2 || lc->n_kv_heads <= 0 ||
            c.n_heads % lc->n_kv_heads || src->head_dim != lc->head_dim || lc->rope_pairs > lc->head_dim / 2 ||
            lc->rope_pairs < 0)
            abort();
    }
    if (c.layer[c.n_layers - 1].attn != G4_ATTN_FULL) abort();
    g4_config_free(&c);
    return 0;
}
