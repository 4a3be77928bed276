/* The config parser on the released configurations (data/configs, checked
 * with transformers 5.17.0: data/configs/PARAM_COUNTS.md) and on the
 * defaults transformers applies when keys are absent. */
#include "check.h"
#include "model/config.h"
#include "model/params.h"

#include <string.h>

static void load(const char *arch, g4_config *c) {
    char path[256];
    g4_error err;
    snprintf(path, sizeof path, "data/configs/%s/config.json", arch);
    CHECK(g4_config_load(path, c, &err) == 0, "%s: %s", path, err.msg);
}

static int full_layers(const g4_config *c, int *out) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++)
        if (c->layer[l].attn == G4_ATTN_FULL) out[n++] = l;
    return n;
}

static void test_e2b(void) {
    g4_config c;
    load("e2b", &c);
    if (!c.layer) return;
    int full[64], n = full_layers(&c, full);
    CHECK(c.n_layers == 35 && c.hidden_size == 1536 && n == 7 && full[0] == 4 && full[6] == 34, "E2B layer pattern");
    CHECK(c.sliding_window == 512 && c.ple_dim == 256 && c.n_kv_shared_layers == 20, "E2B window / PLE / sharing");
    for (int l = 0; l < 35; l++) {
        const g4_layer_config *lc = &c.layer[l];
        int want_src = l < 15 ? l : (lc->attn == G4_ATTN_FULL ? 14 : 13);
        CHECK(lc->kv_source == want_src, "E2B layer %d reads KV of %d, expected %d", l, lc->kv_source, want_src);
        CHECK(lc->ffn_dim == (l < 15 ? 6144 : 12288), "E2B layer %d MLP width %d", l, lc->ffn_dim);
        CHECK(lc->head_dim == (lc->attn == G4_ATTN_FULL ? 512 : 256) && lc->n_kv_heads == 1 && !lc->k_eq_v, "E2B layer %d geometry", l);
        if (lc->attn == G4_ATTN_FULL)
            CHECK(lc->rope_pairs == 64 && lc->rope_denominator == 512 && lc->rope_theta == 1e6, "E2B proportional RoPE");
        else
            CHECK(lc->rope_pairs == 128 && lc->rope_denominator == 256 && lc->rope_theta == 1e4, "E2B sliding RoPE");
    }
    g4_param_count p = g4_count_params(&c);
    CHECK(p.total == 4628569344ull, "E2B text parameters %llu", (unsigned long long)p.total);
    CHECK(p.active > 2270000000ull && p.active < 2300000000ull, "E2B effective parameters %llu (published: 2.3 B)", (unsigned long long)p.active);
    g4_config_free(&c);
}

static void test_e4b(void) {
    g4_config c;
    load("e4b", &c);
    if (!c.layer) return;
    CHECK(c.n_layers == 42 && c.layer[23].attn == G4_ATTN_FULL && c.layer[22].attn == G4_ATTN_SLIDING, "E4B pattern");
    CHECK(c.layer[24].kv_source == 22 && c.layer[29].kv_source == 23 && c.layer[41].kv_source == 23 && c.layer[23].kv_source == 23,
          "E4B KV sharing reads 22 (sliding) / 23 (full)");
    CHECK(c.layer[30].ffn_dim == 10240 && c.layer[5].n_kv_heads == 2, "E4B MLP / kv heads");
    CHECK(g4_count_params(&c).total == 7463013376ull, "E4B text parameters %llu", (unsigned long long)g4_count_params(&c).total);
    g4_config_free(&c);
}

static void test_26b(void) {
    g4_config c;
    load("26b-a4b", &c);
    if (!c.layer) return;
    CHECK(c.n_experts == 128 && c.top_k_experts == 8 && c.moe_dim == 704 && c.ple_dim == 0, "26B MoE");
    CHECK(c.layer[5].attn == G4_ATTN_FULL && c.layer[5].k_eq_v && c.layer[5].n_kv_heads == 2 && c.layer[5].head_dim == 512,
          "26B global layers: k=v, 2 kv heads, head dim 512");
    CHECK(!c.layer[4].k_eq_v && c.layer[4].n_kv_heads == 8 && c.layer[4].head_dim == 256 && c.sliding_window == 1024, "26B sliding");
    g4_param_count p = g4_count_params(&c);
    CHECK(p.total == 25233141760ull, "26B text parameters %llu", (unsigned long long)p.total);
    CHECK(p.active > 3800000000ull && p.active < 3850000000ull, "26B active parameters %llu (published: 3.8 B)", (unsigned long long)p.active);
    g4_config_free(&c);
}

static void test_31b(void) {
    g4_config c;
    load("31b", &c);
    if (!c.layer) return;
    CHECK(c.n_layers == 60 && c.layer[59].k_eq_v && c.layer[59].n_kv_heads == 4 && c.layer[0].n_kv_heads == 16, "31B geometry");
    CHECK(g4_count_params(&c).total == 30697345280ull, "31B text parameters %llu", (unsigned long long)g4_count_params(&c).total);
    g4_config_free(&c);
}

/* Absent keys take transformers' defaults; the last layer is always global. */
static void test_defaults(void) {
    const char *j = "{\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 8, \"num_attention_heads\": 2,"
                    " \"num_key_value_heads\": 1, \"head_dim\": 16, \"intermediate_size\": 64}";
    g4_config c;
    g4_error err;
    CHECK(g4_config_parse(j, strlen(j), &c, &err) == 0, "%s", err.msg);
    if (!c.layer) return;
    int full[8], n = full_layers(&c, full);
    CHECK(n == 2 && full[0] == 5 && full[1] == 7, "default 5:1 pattern with the last layer forced global");
    CHECK(c.ple_dim == 256 && c.final_logit_softcap == 0 && c.sliding_window == 512 && c.layer[5].head_dim == 512,
          "defaults: PLE 256, no softcap, window 512, global head dim 512");
    CHECK(c.n_eos_token_ids == 1 && c.eos_token_ids[0] == 1 && c.bos_token_id == 2, "default special ids");
    g4_config_free(&c);

    const char *forced = "{\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
                         " \"num_key_value_heads\": 1, \"head_dim\": 16, \"intermediate_size\": 64,"
                         " \"layer_types\": [\"sliding_attention\", \"sliding_attention\"], \"global_head_dim\": 16}";
    CHECK(g4_config_parse(forced, strlen(forced), &c, &err) == 0, "%s", err.msg);
    CHECK(c.layer && c.layer[1].attn == G4_ATTN_FULL, "last layer forced to full attention");
    g4_config_free(&c);
}

int main(void) {
    test_e2b();
    test_e4b();
    test_26b();
    test_31b();
    test_defaults();
    return check_exit("test_config");
}
