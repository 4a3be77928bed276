#!/usr/bin/env python3
"""Hugging Face transformers on the same GPU and the same shapes as `gemma4 bench --gpu --synth ARCH`:
the released text config (data/configs/ARCH/config.json), random bf16 weights made on the GPU,
attention "sdpa" (its fastest for Gemma 4: flash-attention does not take the 512-wide heads).

  python3 tools/bench_transformers.py --arch 31b [--prefill 2048] [--decode 64] [--repeats 3]

Prefill: one forward pass of PREFILL tokens from an empty cache, logits of the last token only.
Decode: DECODE steps of one token each through the DynamicCache after an 8-token prompt
(batch 1, short context), eager PyTorch (no torch.compile). Median of the repeats after a
warm-up. Prints one JSON line."""
import argparse
import json
import os
import statistics
import time

import torch
from transformers import Gemma4ForCausalLM, Gemma4TextConfig


def make_model(arch):
    path = os.path.join(os.path.dirname(__file__), "..", "data", "configs", arch, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg = Gemma4TextConfig(**cfg.get("text_config", cfg))
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Gemma4ForCausalLM._from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
    model.eval()
    return model, cfg


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.inference_mode()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--prefill", type=int, default=2048)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    model, cfg = make_model(a.arch)
    gen = torch.Generator(device="cuda").manual_seed(1)
    result = {"arch": a.arch, "transformers_attention": "sdpa", "dtype": "bfloat16",
              "device": torch.cuda.get_device_name(),
              "params_b": sum(p.numel() for p in model.parameters()) / 1e9}

    if a.prefill:
        ids = torch.randint(3, cfg.vocab_size, (1, a.prefill), device="cuda", generator=gen)
        t = timed(lambda: model(input_ids=ids, use_cache=True, logits_to_keep=1), a.repeats)
        result["prefill_tokens"] = a.prefill
        result["prefill_tok_s"] = a.prefill / t

    if a.decode:
        prompt = torch.randint(3, cfg.vocab_size, (1, 8), device="cuda", generator=gen)

        def decode():
            out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
            cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(a.decode):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            return time.perf_counter() - t0

        decode()  # warm-up
        t = statistics.median(decode() for _ in range(a.repeats))
        result["decode_tokens"] = a.decode
        result["decode_tok_s"] = a.decode / t
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
