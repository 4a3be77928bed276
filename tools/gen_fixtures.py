#!/usr/bin/env python3
"""Generate the tiny random-weight Gemma 4 reference fixtures with Hugging Face transformers.

usage: python3 tools/gen_fixtures.py OUTDIR [--only e-like,moe,...] [--device cuda|cpu]

Needs torch, transformers (5.17.0 is the reference), safetensors and numpy; it runs on the GPU
machine, not in CI. Everything is deterministic: fixed seeds, float32, eager attention, TF32 off.

Fixtures written under OUTDIR (one directory each):
  e-like       Gemma4ForCausalLM shaped like E2B: PLE, KV sharing, double-wide MLP, proportional RoPE
  moe          Gemma4ForCausalLM shaped like 26B-A4B: MoE block, attention_k_eq_v, 1 global kv head
  dense        Gemma4ForCausalLM shaped like 31B: attention_k_eq_v, no PLE, no MoE
  e-like-mm    the e-like weights saved as Gemma4ForConditionalGeneration with tiny vision and audio
               towers, config.json in the released flat form, sharded safetensors
  <x>-bf16     bf16 twins of e-like, moe, dense
Each holds config.json, safetensors, case.json {input_ids, greedy, notes, ...}, logits.f32
(float32 little-endian [prompt_len][vocab], one prefill over input_ids) and logits_greedy.f32
([24][vocab]: the logits that predicted each greedy token, from one no-cache forward over
input_ids + greedy[:23]); bf16 twins also hold logits_f32ref.f32 (float32 forward on the
bf16-rounded weights, embed_scale = bf16(sqrt(D))), and their greedy comes from that run.

Seeds: for each text fixture N_WEIGHT_SEEDS weight seeds are tried and the one whose prefill argmax
least often equals the input token is kept (random tied-embedding models tend to copy the input);
then input-id seeds are tried and, among those whose top1-top2 logit margin is >= 1e-3 everywhere
(prefill and greedy steps) and whose greedy tokens avoid {0, 1, 2, 106}, the one with the most
distinct greedy tokens is kept. The ref_numpy cross-check runs if shared/tools/ref_numpy.py (or
$REF_NUMPY) is found. GENERATION_LOG.txt in OUTDIR records every choice and randomisation rule.
"""
import argparse
import copy
import glob
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np
import torch

import transformers
from transformers import (Gemma4AudioConfig, Gemma4Config, Gemma4ForCausalLM,
                          Gemma4ForConditionalGeneration, Gemma4TextConfig, Gemma4VisionConfig)

S, F = "sliding_attention", "full_attention"
ROPE = {
    S: {"rope_type": "default", "rope_theta": 10000.0},
    F: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0},
}
N_GREEDY = 24
N_WEIGHT_SEEDS = 8                    # weight seeds tried per fixture; the least "copy the input token" one wins
MIN_MARGIN = 1e-3
AVOID_IN_GREEDY = {0, 1, 2, 106}      # pad, eos, bos, <turn|>: an engine that stops at eos agrees too
EMBED_STD0 = 0.5                      # gives pre-softcap logit std ~4 at D=64
LOGIT_STD_TARGET = (3.5, 5.5)

COMMON = dict(vocab_size=512, vocab_size_per_layer_input=512, hidden_size=64, num_attention_heads=4,
              num_key_value_heads=2, head_dim=32, global_head_dim=64, rope_parameters=ROPE,
              final_logit_softcapping=30.0, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
              tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2)

FIXTURES = {
    "e-like": dict(cfg=dict(COMMON, num_hidden_layers=8, layer_types=[S, S, F, S, S, F, S, F],
                            intermediate_size=96, use_double_wide_mlp=True, num_kv_shared_layers=3,
                            hidden_size_per_layer_input=16, sliding_window=8, attention_k_eq_v=False,
                            enable_moe_block=False),
                   prompt_len=40, seed=1001),
    "moe": dict(cfg=dict(COMMON, num_hidden_layers=6, layer_types=[S, S, F, S, S, F], num_global_key_value_heads=1,
                         attention_k_eq_v=True, enable_moe_block=True, num_experts=16, top_k_experts=4,
                         moe_intermediate_size=32, intermediate_size=48, sliding_window=8,
                         hidden_size_per_layer_input=0, num_kv_shared_layers=0, use_double_wide_mlp=False),
                prompt_len=40, seed=2002),
    "dense": dict(cfg=dict(COMMON, num_hidden_layers=6, layer_types=[S, S, F, S, S, F], num_global_key_value_heads=1,
                           attention_k_eq_v=True, enable_moe_block=False, intermediate_size=128, sliding_window=16,
                           hidden_size_per_layer_input=0, num_kv_shared_layers=0, use_double_wide_mlp=False),
                  prompt_len=56, seed=3003),
}

TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=2, head_dim=16, patch_size=16, position_embedding_size=64,
                   pooling_kernel_size=3, use_clipped_linears=True, standardize=False)
TINY_AUDIO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, subsampling_conv_channels=[128, 8],
                  conv_kernel_size=5, output_proj_dims=48, use_clipped_linears=True)

LOG = []


def log(*a):
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    LOG.append(s)


# ----------------------------------------------------------------------------------------------- models

def make_model(cls, cfg):
    """Instantiate cls from cfg with eager attention, float32, on the CPU."""
    m = None
    for kw in (dict(attn_implementation="eager", experts_implementation="eager", dtype=torch.float32),
               dict(attn_implementation="eager", dtype=torch.float32),
               dict(attn_implementation="eager", torch_dtype=torch.float32),
               dict(attn_implementation="eager")):
        try:
            m = cls._from_config(cfg, **kw)
            break
        except (TypeError, ValueError):
            continue
    if m is None:
        cfg._attn_implementation = "eager"
        m = cls(cfg)
    m = m.float().eval()
    assert m.config._attn_implementation == "eager", m.config._attn_implementation
    return m


def impl_of(m):
    return (f"attn {m.config._attn_implementation},"
            f" experts {getattr(m.config, '_experts_implementation', getattr(m.config, 'experts_implementation', 'n/a'))}")


def load_model(cls, d, dtype):
    res = None
    for kw in (dict(attn_implementation="eager", experts_implementation="eager", dtype=dtype),
               dict(attn_implementation="eager", dtype=dtype),
               dict(attn_implementation="eager", torch_dtype=dtype)):
        try:
            res = cls.from_pretrained(d, output_loading_info=True, **kw)
            break
        except (TypeError, ValueError) as e:
            log(f"  from_pretrained{tuple(kw)} failed: {type(e).__name__}: {e}")
    m, info = res
    bad = {k: v for k, v in info.items() if v}
    if bad:
        log(f"  loading info for {d}: {bad}")
    missing = [k for k in (info.get("missing_keys") or []) if not k.endswith("lm_head.weight")]
    if missing or info.get("unexpected_keys") or info.get("mismatched_keys"):
        raise RuntimeError(f"unclean load of {d}: {bad}")
    return m.eval()


def rule_for(name, t, emb_std, ple_dim):
    """(kind, a, b) randomisation rule for one state-dict entry; raises if none applies."""
    base = name.split(".")[-1]
    if base == "layer_scalar":
        return ("uniform", 0.5, 1.5)
    if name.endswith("router.scale"):
        return ("uniform", 0.6, 1.4)
    if name.endswith("router.per_expert_scale"):
        return ("uniform", 0.5, 1.5)
    if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
        return ("normal", 0.0, 1.0 / math.sqrt(t.shape[-1]))
    if name.endswith("embed_tokens.weight"):
        return ("normal", 0.0, emb_std)
    if name.endswith("embed_tokens_per_layer.weight"):
        return ("normal", 0.0, 1.0 / math.sqrt(ple_dim))
    if name.endswith("position_embedding_table"):
        return ("normal", 0.0, 0.5)
    if base in ("input_min", "output_min"):
        return ("uniform", -3.0, -1.5)
    if base in ("input_max", "output_max"):
        return ("uniform", 1.5, 3.0)
    if base == "std_bias":
        return ("normal", 0.0, 0.5)
    if base == "std_scale":
        return ("uniform", 0.6, 1.4)
    if base == "per_dim_scale":
        return ("normal", 0.0, 0.5)
    if t.ndim == 1 and "norm" in name and base == "weight":
        return ("uniform", 0.6, 1.4)
    if base == "bias":
        return ("normal", 0.0, 0.1)
    if t.ndim >= 2 and base == "weight":
        return ("normal", 0.0, 1.0 / math.sqrt(int(np.prod(t.shape[1:]))))
    raise RuntimeError(f"no randomisation rule for {name} {tuple(t.shape)}")


@torch.no_grad()
def randomise(model, seed, emb_std, ple_dim, skip_prefixes=(), title="", quiet=False):
    """Randomise every parameter and persistent buffer of model (state_dict entries), deduplicating tied ones."""
    g = torch.Generator().manual_seed(seed)
    seen = {}
    sd = model.state_dict(keep_vars=True)
    before = {k: v.detach().clone() for k, v in sd.items()}
    lines = []
    for name, t in sd.items():
        if any(name.startswith(p) for p in skip_prefixes):
            lines.append(f"    {name:70s} {str(tuple(t.shape)):18s} kept (copied)")
            continue
        key = (t.data_ptr(), tuple(t.shape))
        if key in seen:
            lines.append(f"    {name:70s} {str(tuple(t.shape)):18s} tied to {seen[key]}")
            continue
        seen[key] = name
        kind, a, b = rule_for(name, t, emb_std, ple_dim)
        if kind == "uniform":
            v = torch.rand(t.shape, generator=g, dtype=torch.float64) * (b - a) + a
            desc = f"uniform[{a:g},{b:g}]"
        else:
            v = torch.randn(t.shape, generator=g, dtype=torch.float64) * b + a
            desc = f"normal(0,{b:.4g})"
        t.data.copy_(v.to(t.dtype))
        lines.append(f"    {name:70s} {str(tuple(t.shape)):18s} {desc}")
    after = model.state_dict()
    unchanged = [k for k in after if not any(k.startswith(p) for p in skip_prefixes)
                 and torch.equal(after[k].float(), before[k].float())]
    if not quiet:
        log(f"  randomised state dict {title} ({len(sd)} entries, seed {seed}):")
        for s in lines:
            log(s)
    assert not unchanged, f"left at init value: {unchanged}"
    return before


def text_model_of(model):
    return model.model.language_model if hasattr(model.model, "language_model") else model.model


@torch.no_grad()
def presoftcap_logits(model, ids):
    h = model.model(input_ids=ids).last_hidden_state
    return model.lm_head(h)[0].float()


# ----------------------------------------------------------------------------------------------- runs

@torch.no_grad()
def prefill_logits(model, ids):
    return model(input_ids=ids, use_cache=False).logits[0].float()


@torch.no_grad()
def greedy_generate(model, ids):
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY, use_cache=True, pad_token_id=0)
    return [int(x) for x in out[0, ids.shape[1]:]]


@torch.no_grad()
def greedy_nocache(model, ids):
    seq = ids
    for _ in range(N_GREEDY):
        nxt = model(input_ids=seq, use_cache=False).logits[0, -1].argmax()
        seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
    full = model(input_ids=seq[:, :-1], use_cache=False).logits[0].float()
    top2 = full.topk(2, dim=-1).values
    gap = top2[:, 0] - top2[:, 1]
    return [int(x) for x in seq[0, ids.shape[1]:]], float(gap.min()), int(gap.argmin()), full


def make_ids(seed, n, vocab):
    rng = np.random.default_rng(seed)
    return [2] + [int(x) for x in rng.integers(3, vocab, size=n - 1)]


def choose_case(model, n, vocab, seed0, device, tries=40, pool=12):
    """Pick input ids (seeds seed0, seed0+1, ...) whose greedy run has argmax margins >= MIN_MARGIN and no special
    ids; among the acceptable ones of the first `pool` seeds take the one whose greedy continuation has the most
    distinct tokens (random tied-embedding models tend to repeat the last token)."""
    best = None
    for k in range(tries):
        seed = seed0 + k
        ids_l = make_ids(seed, n, vocab)
        ids = torch.tensor([ids_l], device=device)
        g_nc, margin, at, full = greedy_nocache(model, ids)
        ok = margin >= MIN_MARGIN and not (set(g_nc) & AVOID_IN_GREEDY)
        nd = len(set(g_nc))
        log(f"  ids seed {seed}: min top1-top2 margin {margin:.4g} at position {at}, {nd} distinct greedy tokens"
            f" {g_nc[:10]}... {'ok' if ok else 'rejected'}")
        if ok and (best is None or nd > best["distinct"]):
            best = dict(seed=seed, ids_l=ids_l, ids=ids, greedy_nocache=g_nc, margin=margin, full=full, distinct=nd)
        if best is not None and k + 1 >= pool:
            log(f"  chosen ids seed {best['seed']} ({best['distinct']} distinct greedy tokens,"
                f" margin {best['margin']:.4g})")
            return best
    raise RuntimeError("no acceptable input ids found")


def finish_case(model, case, tag):
    """Prefill logits, generate() greedy and the consistency checks for a chosen case."""
    ids = case["ids"]
    n = ids.shape[1]
    lo = prefill_logits(model, ids)
    g = greedy_generate(model, ids)
    same = g == case["greedy_nocache"]
    d_full = float((lo - case["full"][:n]).abs().max())
    log(f"  [{tag}] generate(use_cache=True) == no-cache argmax loop: {same};"
        f" prefill vs extended-forward max|d| {d_full:.3g}")
    if not same:
        log(f"    generate: {g}\n    nocache : {case['greedy_nocache']}")
    raw = presoftcap_logits(model, ids)
    case.update(logits=lo, greedy_generate=g, greedy_same=same, logit_std=float(raw.std()),
                logit_absmax=float(raw.abs().max()))
    log(f"  [{tag}] pre-softcap logit std {case['logit_std']:.3f} (max |.| {case['logit_absmax']:.2f}),"
        f" post-softcap std {float(lo.std()):.3f}")
    return case


def write_case(d, case, notes, extra=None):
    lo = case["logits"].detach().cpu().numpy().astype("<f4")
    lo.tofile(os.path.join(d, "logits.f32"))
    n = len(case["ids_l"])
    lg = case["full"][n - 1:n - 1 + N_GREEDY].detach().cpu().numpy().astype("<f4")
    assert lg.shape[0] == N_GREEDY
    assert [int(x) for x in lg.argmax(-1)] == case["greedy_nocache"]
    lg.tofile(os.path.join(d, "logits_greedy.f32"))
    greedy = case["greedy_generate"] if case["greedy_same"] else case["greedy_nocache"]
    method = ("model.generate(do_sample=False, max_new_tokens=24, min_new_tokens=24, use_cache=True);"
              " verified equal to a no-cache argmax loop") if case["greedy_same"] else \
             ("no-cache argmax loop (generate with cache DIFFERED: %s)" % case["greedy_generate"])
    cj = {"input_ids": case["ids_l"], "greedy": greedy,
          "notes": notes + " Greedy: " + method + ".",
          "prompt_len": len(case["ids_l"]), "vocab_size": int(lo.shape[1]), "ids_seed": case["seed"],
          "min_argmax_margin": round(case["margin"], 6), "presoftcap_logit_std": round(case["logit_std"], 4),
          "greedy_method": "generate+nocache_verified" if case["greedy_same"] else "nocache_loop",
          "logits_greedy": "logits_greedy.f32 = float32 LE [24][vocab]: logits of one no-cache forward over "
                           "input_ids + greedy[:23] at positions prompt_len-1 .. prompt_len+22 (row k predicts "
                           "greedy[k]); for -bf16 twins from the float32-on-bf16-weights model",
          "greedy_distinct_tokens": len(set(greedy))}
    if extra:
        cj.update(extra)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(cj, f, indent=1)
        f.write("\n")


def dir_listing(d):
    tot = 0
    for f in sorted(os.listdir(d)):
        sz = os.path.getsize(os.path.join(d, f))
        tot += sz
        log(f"    {f:40s} {sz:9d}")
    log(f"    {'total':40s} {tot:9d}")
    return tot


def set_bf16_embed_scale(model, D):
    emb = text_model_of(model).embed_tokens
    v = float(torch.tensor(math.sqrt(D), dtype=torch.float32).to(torch.bfloat16).float())
    emb.embed_scale.fill_(v)
    return v


# ----------------------------------------------------------------------------------------------- fixtures

def build_text_fixture(name, spec, outdir, device):
    log(f"\n=== {name} ===")
    cfg = Gemma4TextConfig(**copy.deepcopy(spec["cfg"]))
    model = make_model(Gemma4ForCausalLM, cfg)
    D, V = cfg.hidden_size, cfg.vocab_size
    P = cfg.hidden_size_per_layer_input or 1
    log(f"  transformers {transformers.__version__}, torch {torch.__version__}, device {device}, {impl_of(model)}")
    for i, layer in enumerate(text_model_of(model).layers):
        a = layer.self_attn
        log(f"  layer {i} {cfg.layer_types[i][:7]} head_dim {a.head_dim} q {tuple(a.q_proj.weight.shape)}"
            f" k {tuple(a.k_proj.weight.shape) if getattr(a, 'k_proj', None) is not None else None}"
            f" v {tuple(a.v_proj.weight.shape) if getattr(a, 'v_proj', None) is not None else None}"
            f" shared {getattr(a, 'is_kv_shared_layer', '?')} mlp_I {layer.mlp.gate_proj.weight.shape[0]}"
            + (f" experts gate_up {tuple(layer.experts.gate_up_proj.shape)} down {tuple(layer.experts.down_proj.shape)}"
               if getattr(layer, "experts", None) is not None else ""))
    # Random tied-embedding models tend to predict the current input token (self-logit |E_t|^2 dominates).
    # Try a few weight seeds and keep the one whose prefill argmax copies the input token least often.
    probes = [torch.tensor([make_ids(spec["seed"] + j, spec["prompt_len"], V)]) for j in range(3)]
    best = None
    for k in range(N_WEIGHT_SEEDS):
        ws = spec["seed"] + 100 * k
        m = make_model(Gemma4ForCausalLM, copy.deepcopy(cfg))
        randomise(m, ws, EMBED_STD0, P, quiet=True)
        am = [prefill_logits(m, p).argmax(-1) for p in probes]
        rate = float(np.mean([float((a == p[0]).float().mean()) for a, p in zip(am, probes)]))
        nd = float(np.mean([len(set(a.tolist())) for a in am]))
        log(f"  weight seed {ws}: prefill argmax == input token at {rate:.3f} of positions,"
            f" {nd:.1f} distinct argmax ids per prompt")
        if best is None or rate < best[1]:
            best = (ws, rate)
        del m
    wseed = best[0]
    log(f"  chosen weight seed {wseed} (self-copy rate {best[1]:.3f})")
    randomise(model, wseed, EMBED_STD0, P, title=name)
    # one correction of the embedding scale so that pre-softcap logits have std in the target band
    probe = probes[0]
    s0 = float(presoftcap_logits(model, probe).std())
    emb_std = EMBED_STD0
    if not (LOGIT_STD_TARGET[0] <= s0 <= LOGIT_STD_TARGET[1]):
        f = 4.5 / s0
        with torch.no_grad():
            text_model_of(model).embed_tokens.weight.mul_(f)
        emb_std *= f
        log(f"  probe logit std {s0:.3f}: embedding rescaled by {f:.4f} -> std {emb_std:.4f}")
    else:
        log(f"  probe logit std {s0:.3f} with embedding std {emb_std}")
    model.to(device)
    case = choose_case(model, spec["prompt_len"], V, spec["seed"] * 10, device)
    finish_case(model, case, name)

    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    # reload check: the saved checkpoint alone reproduces the logits
    re = load_model(Gemma4ForCausalLM, d, torch.float32).to(device)
    d_re = float((prefill_logits(re, case["ids"]) - case["logits"]).abs().max())
    log(f"  reload from {name}/ max|d| {d_re:.3g}")
    del re
    # CPU float32 cross-check
    lo_cpu = prefill_logits(copy.deepcopy(model).cpu(), case["ids"].cpu())
    d_cpu = float((lo_cpu - case["logits"].cpu()).abs().max())
    log(f"  GPU vs CPU float32 prefill max|d| {d_cpu:.3g}")
    notes = (f"Tiny random-weight Gemma4ForCausalLM ({name}), float32, eager attention, transformers "
             f"{transformers.__version__} on {device} (TF32 off); weights randomised by tools/gen_fixtures.py "
             f"(weight seed {wseed}, embedding std {emb_std:.4f}). logits.f32 = one prefill over input_ids, "
             f"[{spec['prompt_len']}][{V}] float32 LE, final softcap 30 applied.")
    write_case(d, case, notes, extra={"embedding_std": round(emb_std, 6), "gpu_vs_cpu_maxdiff": d_cpu,
                                      "weight_seed": wseed})
    cfgj = json.load(open(os.path.join(d, "config.json")))
    log(f"  config.json text fields: per_layer_config={json.dumps(cfgj.get('per_layer_config'))}"
        f" global_head_dim={cfgj.get('global_head_dim', 'absent')}"
        f" num_global_key_value_heads={cfgj.get('num_global_key_value_heads', 'absent')} dtype={cfgj.get('dtype')}")
    dir_listing(d)
    summary = dict(name=name, prompt_len=spec["prompt_len"], logit_std=case["logit_std"], margin=case["margin"],
                   greedy_same=case["greedy_same"], reload=d_re, gpu_cpu=d_cpu, ids_seed=case["seed"],
                   emb_std=emb_std, weight_seed=wseed,
                   self_copy=float((case["logits"].argmax(-1).cpu() == case["ids"][0].cpu()).float().mean()))
    return model, case, summary


def build_bf16_twin(name, spec, model, outdir, device):
    tname = name + "-bf16"
    log(f"\n=== {tname} ===")
    d = os.path.join(outdir, tname)
    os.makedirs(d, exist_ok=True)
    mb = copy.deepcopy(model).cpu().to(torch.bfloat16)
    mb.save_pretrained(d)
    del mb
    cfgj = json.load(open(os.path.join(d, "config.json")))
    log(f"  saved dtype {cfgj.get('dtype')}")
    D, V = model.config.hidden_size, model.config.vocab_size
    # float32 on the bf16-rounded weights, embed_scale = bf16(sqrt(D))
    mref = load_model(Gemma4ForCausalLM, d, torch.float32).to(device)
    sc = set_bf16_embed_scale(mref, D)
    log(f"  f32ref embed_scale set to bf16(sqrt({D})) = {sc}; {impl_of(mref)}")
    case = choose_case(mref, spec["prompt_len"], V, spec["seed"] * 10, device)
    finish_case(mref, case, tname + " f32ref")
    # bf16 model, bf16 activations, eager, on the GPU
    mbf = load_model(Gemma4ForCausalLM, d, torch.bfloat16).to(device)
    emb = text_model_of(mbf).embed_tokens
    rot = text_model_of(mbf).rotary_emb
    inv = {k: str(v.dtype) for k, v in rot.named_buffers() if "inv_freq" in k}
    log(f"  bf16 model: param dtype {next(mbf.parameters()).dtype}, embed_scale buffer {emb.embed_scale.dtype}"
        f" {float(emb.embed_scale)}, rotary buffers {inv},"
        f" {impl_of(mbf)}")
    lo_bf = prefill_logits(mbf, case["ids"])
    g_bf = greedy_generate(mbf, case["ids"])
    top2 = lo_bf.topk(2, dim=-1).values
    m_bf = float((top2[:, 0] - top2[:, 1]).min())
    noise = float((lo_bf - case["logits"]).abs().max())
    agree = int((lo_bf.argmax(-1) == case["logits"].argmax(-1)).sum())
    log(f"  bf16 vs f32ref: max|d| {noise:.4g}, prefill argmax agree {agree}/{lo_bf.shape[0]},"
        f" bf16 prefill min margin {m_bf:.4g}, bf16 greedy == f32ref greedy: {g_bf == case['greedy_nocache']}")
    case["logits"].detach().cpu().numpy().astype("<f4").tofile(os.path.join(d, "logits_f32ref.f32"))
    f32ref_case = dict(case)
    f32ref_case["logits"] = lo_bf        # logits.f32 = the native bf16 run
    notes = (f"bf16 twin of {name}: same weights rounded to bfloat16 and saved in bf16. logits.f32 = transformers "
             f"{transformers.__version__} running the bf16 model in bf16 on {device} (eager); logits_f32ref.f32 = "
             f"float32 forward on the bf16-rounded weights with embed_tokens.embed_scale = bf16(sqrt({D})) = {sc}. "
             f"max|logits - logits_f32ref| = {noise:.4g} (inherent bf16 noise). greedy and min_argmax_margin are "
             f"those of the float32-on-bf16-weights run; greedy_bf16 is generate() on the bf16 model.")
    write_case(d, f32ref_case, notes, extra={"greedy_bf16": g_bf, "bf16_vs_f32ref_maxdiff": noise,
                                              "bf16_prefill_argmax_agree": agree, "bf16_min_margin": m_bf})
    dir_listing(d)
    del mref, mbf
    return dict(name=tname, prompt_len=spec["prompt_len"], logit_std=case["logit_std"], margin=case["margin"],
                greedy_same=case["greedy_same"], noise=noise, agree=agree, greedy_bf16_same=g_bf == case["greedy_nocache"],
                ids_seed=case["seed"])


def flat_released_config(cfgj, expect_ghd, expect_gkv):
    """Rewrite a transformers>=5.15 config dict (per_layer_config) into the released flat text_config form."""
    tc = cfgj["text_config"]
    plc = tc.pop("per_layer_config", None) or {}
    by_idx = {}
    for k, v in plc.items():
        if isinstance(k, int) or str(k).lstrip("-").isdigit():
            by_idx[int(k)] = v
    full = [i for i, t in enumerate(tc["layer_types"]) if t == F]
    found = [by_idx.get(i) or plc.get(F) or {} for i in full]
    ghd = {o.get("head_dim") for o in found}
    gkv = {o.get("num_key_value_heads") for o in found}
    log(f"  per_layer_config of the full layers: head_dim {ghd}, num_key_value_heads {gkv}")
    assert ghd == {expect_ghd}, (ghd, expect_ghd)
    assert gkv <= {expect_gkv, None}, (gkv, expect_gkv)
    tc["global_head_dim"] = expect_ghd
    tc["num_global_key_value_heads"] = expect_gkv
    cfgj["text_config"] = dict(sorted(tc.items()))
    return cfgj


def build_mm_fixture(elike_model, elike_case, outdir, device, seed=4004):
    name = "e-like-mm"
    log(f"\n=== {name} ===")
    tcfg = copy.deepcopy(elike_model.config)
    tcfg.architectures = None
    cfg = Gemma4Config(text_config=tcfg, vision_config=Gemma4VisionConfig(**TINY_VISION),
                       audio_config=Gemma4AudioConfig(**TINY_AUDIO))
    mm = make_model(Gemma4ForConditionalGeneration, cfg)
    init_sd = {k: v.detach().clone() for k, v in mm.state_dict().items()}
    missing = mm.model.language_model.load_state_dict(copy.deepcopy(elike_model.model).cpu().state_dict(), strict=True)
    log(f"  copied e-like text weights: {missing}")
    randomise(mm, seed, EMBED_STD0, 1, skip_prefixes=("model.language_model.", "lm_head."), title=name)
    unchanged = [k for k, v in mm.state_dict().items() if torch.equal(v.float(), init_sd[k].float())]
    assert not unchanged, f"mm entries left at init: {unchanged}"
    assert mm.lm_head.weight.data_ptr() == mm.model.language_model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    # smoke test of the towers (not part of the fixture's logits)
    try:
        with torch.no_grad():
            px = torch.rand(1, 9, 3 * 16 * 16)
            pos = torch.tensor([[[x, y] for y in range(3) for x in range(3)]])
            vf = mm.model.get_image_features(px, pos, return_dict=True).pooler_output
            af = mm.model.get_audio_features(torch.randn(1, 48, 128), torch.ones(1, 48, dtype=torch.bool),
                                             return_dict=True)
            log(f"  tower smoke test: image features {[tuple(t.shape) for t in vf]},"
                f" audio features {tuple(af.pooler_output.shape)}")
    except Exception as e:  # noqa: BLE001
        log(f"  tower smoke test FAILED (does not affect the text fixture): {type(e).__name__}: {e}")
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    mm.save_pretrained(d, max_shard_size="400KB")
    cpath = os.path.join(d, "config.json")
    orig = json.load(open(cpath))
    log(f"  config.json as written: text_config.per_layer_config = {json.dumps(orig['text_config'].get('per_layer_config'))}")
    flat = flat_released_config(copy.deepcopy(orig), FIXTURES["e-like"]["cfg"]["global_head_dim"], None)
    with open(cpath, "w") as f:
        json.dump(flat, f, indent=2, sort_keys=True)
        f.write("\n")
    shards = sorted(glob.glob(os.path.join(d, "model-*-of-*.safetensors")))
    log(f"  shards: {[os.path.basename(s) for s in shards]}, index present:"
        f" {os.path.exists(os.path.join(d, 'model.safetensors.index.json'))}")
    assert len(shards) >= 2
    # reload the flat form and compare the text logits with e-like
    re = load_model(Gemma4ForConditionalGeneration, d, torch.float32).to(device)
    ptc = re.config.text_config
    hd = [l.self_attn.head_dim for l in re.model.language_model.layers]
    kv = [l.self_attn.k_proj.weight.shape[0] // l.self_attn.head_dim if getattr(l.self_attn, "k_proj", None) is not None
          else None for l in re.model.language_model.layers]
    log(f"  reloaded flat config: head_dims {hd}, kv heads {kv},"
        f" per_layer_config {getattr(ptc, 'per_layer_config', None)}")
    hd0 = [l.self_attn.head_dim for l in text_model_of(elike_model).layers]
    assert hd == hd0, (hd, hd0)
    ids = elike_case["ids"]
    lo = prefill_logits(re, ids)
    d_el = float((lo - elike_case["logits"]).abs().max())
    log(f"  e-like-mm (flat config, sharded, reloaded) text logits vs e-like: max|d| {d_el:.3g}")
    try:
        g = greedy_generate(re, ids)
        g_ok = g == elike_case["greedy_nocache"]
        log(f"  e-like-mm generate greedy == e-like greedy: {g_ok}")
    except Exception as e:  # noqa: BLE001
        log(f"  e-like-mm generate FAILED: {type(e).__name__}: {e}; using e-like greedy")
        g, g_ok = elike_case["greedy_nocache"], False
    g_nc, margin, _, full = greedy_nocache(re, ids)
    assert g_nc == elike_case["greedy_nocache"], (g_nc, elike_case["greedy_nocache"])
    raw = re.lm_head(re.model(input_ids=ids).last_hidden_state)[0]
    case = dict(elike_case, logits=lo, greedy_generate=g, greedy_same=g_ok, margin=margin, logit_std=float(raw.std()),
                full=full)
    notes = (f"The e-like text decoder saved as Gemma4ForConditionalGeneration (tensors model.language_model.*), "
             f"with tiny random vision tower {TINY_VISION} and audio tower {TINY_AUDIO}; config.json rewritten into "
             f"the released flat form (text_config.global_head_dim / num_global_key_value_heads, no per_layer_config); "
             f"sharded safetensors. logits.f32 = text-only forward (input_ids only) of the model reloaded from this "
             f"directory; max|d| vs e-like logits = {d_el:.3g}.")
    write_case(d, case, notes, extra={"vs_e_like_maxdiff": d_el})
    dir_listing(d)
    return dict(name=name, prompt_len=ids.shape[1], logit_std=case["logit_std"], margin=margin, greedy_same=g_ok,
                vs_elike=d_el, shards=len(shards))


# ----------------------------------------------------------------------------------------------- ref_numpy

def find_ref_numpy():
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.environ.get("REF_NUMPY", ""), "shared/tools/ref_numpy.py", "../shared/tools/ref_numpy.py",
              os.path.join(here, "..", "shared", "tools", "ref_numpy.py"),
              os.path.join(here, "..", "..", "shared", "tools", "ref_numpy.py")):
        if p and os.path.exists(p):
            spec = importlib.util.spec_from_file_location("ref_numpy", p)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod, p
    return None, None


def ref_numpy_check(outdir, names):
    mod, p = find_ref_numpy()
    if mod is None:
        log("\nref_numpy.py not found: skipping the numpy cross-check")
        return {}
    log(f"\n=== ref_numpy cross-check ({p}) ===")
    res = {}
    for n in names:
        d = os.path.join(outdir, n)
        try:
            cj = json.load(open(os.path.join(d, "case.json")))
            _, tc, W = mod.load(d)
            lo = mod.forward(W, tc, cj["input_ids"])
            for fn in ("logits.f32", "logits_f32ref.f32"):
                fp = os.path.join(d, fn)
                if os.path.exists(fp):
                    ref = np.fromfile(fp, dtype="<f4").reshape(lo.shape)
                    dm = float(np.abs(lo - ref).max())
                    ag = int((lo.argmax(-1) == ref.argmax(-1)).sum())
                    log(f"  {n:14s} vs {fn:18s} max|d| {dm:.3g} argmax {ag}/{lo.shape[0]}")
                    res[(n, fn)] = (dm, ag)
        except Exception as e:  # noqa: BLE001
            log(f"  {n}: ref_numpy FAILED {type(e).__name__}: {e}")
    return res


# ----------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", default="e-like,moe,dense,e-like-mm,bf16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    only = set(a.only.split(","))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.set_grad_enabled(False)
    os.makedirs(a.outdir, exist_ok=True)
    t0 = time.time()
    summaries, names, failures = [], [], []
    for name, spec in FIXTURES.items():
        if name not in only and not (name == "e-like" and "e-like-mm" in only):
            continue
        try:
            model, case, summ = build_text_fixture(name, spec, a.outdir, a.device)
            summaries.append(summ)
            names.append(name)
        except Exception as e:  # noqa: BLE001
            import traceback
            log(f"FAILED {name}: {traceback.format_exc()}")
            failures.append(name)
            continue
        if name == "e-like" and "e-like-mm" in only:
            try:
                summaries.append(build_mm_fixture(model, case, a.outdir, a.device))
                names.append("e-like-mm")
            except Exception:  # noqa: BLE001
                import traceback
                log(f"FAILED e-like-mm: {traceback.format_exc()}")
                failures.append("e-like-mm")
        if "bf16" in only:
            try:
                summaries.append(build_bf16_twin(name, spec, model, a.outdir, a.device))
                names.append(name + "-bf16")
            except Exception:  # noqa: BLE001
                import traceback
                log(f"FAILED {name}-bf16: {traceback.format_exc()}")
                failures.append(name + "-bf16")
        del model
    ref = ref_numpy_check(a.outdir, names)
    log("\n=== summary ===")
    for s in summaries:
        log("  " + json.dumps(s, default=lambda x: round(x, 6) if isinstance(x, float) else str(x)))
    tot = 0
    for n in names:
        d = os.path.join(a.outdir, n)
        sz = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        tot += sz
        log(f"  {n:14s} {sz:9d} bytes")
    log(f"  total {tot} bytes; failures: {failures}; {time.time() - t0:.1f} s")
    with open(os.path.join(a.outdir, "GENERATION_LOG.txt"), "w") as f:
        f.write("\n".join(LOG) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
