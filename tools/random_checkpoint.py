#!/usr/bin/python3
"""Writes a Hugging Face checkpoint directory with random weights in the exact shapes of a
Gemma 4 config (text decoder only, Gemma4ForConditionalGeneration names, bf16 by default),
streaming tensor by tensor so a multi-GB model never sits in memory. For load-time, memory and
speed measurements of the engine on real shapes; not a reference (the fixtures are).

usage: tools/random_checkpoint.py data/configs/e2b/config.json OUTDIR [--dtype bf16|f32] [--seed 0]
Needs numpy (Debian: /usr/bin/python3 with python3-numpy)."""
import argparse, json, os, struct, sys, numpy as np

def layer_shapes(tc):
    D, L, Hq = tc["hidden_size"], tc["num_hidden_layers"], tc["num_attention_heads"]
    types = tc["layer_types"]; first = L - (tc.get("num_kv_shared_layers") or 0)
    P = tc.get("hidden_size_per_layer_input") or 0
    out = [("embed_tokens.weight", (tc["vocab_size"], D)), ("norm.weight", (D,))]
    if P:
        out += [("embed_tokens_per_layer.weight", (tc["vocab_size_per_layer_input"], L * P)),
                ("per_layer_model_projection.weight", (L * P, D)), ("per_layer_projection_norm.weight", (P,))]
    for l in range(L):
        p = f"layers.{l}."; full = types[l] == "full_attention"
        hd = tc.get("global_head_dim") or 512 if full else tc["head_dim"]
        keqv = full and tc.get("attention_k_eq_v")
        kv = (tc.get("num_global_key_value_heads") or tc["num_key_value_heads"]) if keqv else tc["num_key_value_heads"]
        I = tc["intermediate_size"] * (2 if tc.get("use_double_wide_mlp") and l >= first else 1)
        out += [(p + n + ".weight", (D,)) for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")]
        out += [(p + "self_attn.q_proj.weight", (Hq * hd, D)), (p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.o_proj.weight", (D, Hq * hd))]
        if l < first:
            out += [(p + "self_attn.k_proj.weight", (kv * hd, D)), (p + "self_attn.k_norm.weight", (hd,))]
            if not keqv: out.append((p + "self_attn.v_proj.weight", (kv * hd, D)))
        out += [(p + "mlp.gate_proj.weight", (I, D)), (p + "mlp.up_proj.weight", (I, D)), (p + "mlp.down_proj.weight", (D, I)), (p + "layer_scalar", (1,))]
        if P:
            out += [(p + "per_layer_input_gate.weight", (P, D)), (p + "per_layer_projection.weight", (D, P)), (p + "post_per_layer_input_norm.weight", (D,))]
        if tc.get("enable_moe_block"):
            E, Im = tc["num_experts"], tc["moe_intermediate_size"]
            out += [(p + n + ".weight", (D,)) for n in ("post_feedforward_layernorm_1", "pre_feedforward_layernorm_2", "post_feedforward_layernorm_2")]
            out += [(p + "router.proj.weight", (E, D)), (p + "router.scale", (D,)), (p + "router.per_expert_scale", (E,)),
                    (p + "experts.gate_up_proj", (E, 2 * Im, D)), (p + "experts.down_proj", (E, D, Im))]
    return [("model.language_model." + n, s) for n, s in out]

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("config"); ap.add_argument("out")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"]); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--branch-scale", type=float, default=1.0,
                    help="scale of the post-attention/FFN/PLE norm weights: below 1 the residual stream dominates, as in "
                         "trained models, so small numeric differences stay small (for interop and quantisation tests)")
    a = ap.parse_args()
    cfg = json.load(open(a.config)); tc = cfg.get("text_config", cfg)
    os.makedirs(a.out, exist_ok=True)
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    shapes = layer_shapes(tc); esz = 2 if a.dtype == "bf16" else 4
    header, off = {}, 0
    for n, s in shapes:
        nb = int(np.prod(s)) * esz
        header[n] = {"dtype": "BF16" if a.dtype == "bf16" else "F32", "shape": list(s), "data_offsets": [off, off + nb]}; off += nb
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(a.seed)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for i, (n, s) in enumerate(shapes):
            count = int(np.prod(s))
            is_vec = len(s) == 1
            for start in range(0, count, 1 << 26):  # 64M elements per piece
                k = min(1 << 26, count - start)
                if is_vec: x = rng.uniform(0.6, 1.4, k).astype(np.float32) * np.float32(a.branch_scale if ".post_" in n else 1.0)
                else: x = (rng.standard_normal(k, dtype=np.float32) * np.float32(1.0 / np.sqrt(s[-1]))).astype(np.float32)
                if a.dtype == "bf16":
                    u = x.view(np.uint32); x = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
                f.write(x.tobytes())
            if os.isatty(2): print(f"\r{i + 1}/{len(shapes)} tensors, {f.tell() / 2**30:.2f} GiB", end="", file=sys.stderr, flush=True)
    if os.isatty(2): print(file=sys.stderr)

if __name__ == "__main__":
    main()
