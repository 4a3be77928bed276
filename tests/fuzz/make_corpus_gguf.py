#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_gguf: a few tiny valid GGUF files (every
metadata value type, every tensor type the reader accepts, a non-default
alignment, version 2, empty and 0-dim tensors, Gemma-4-like keys), laid out as
ggml's writer lays them out. Independent of src/io/gguf_write.c on purpose.
Run from the repository root."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_gguf")

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
       U64: "Q", I64: "q", F64: "d"}
# ggml type: (block elements, block bytes)
GGML = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 3: (32, 20), 6: (32, 22),
        7: (32, 24), 12: (256, 144), 13: (256, 176), 14: (256, 210), 24: (1, 1), 25: (1, 2),
        26: (1, 4), 27: (1, 8), 28: (1, 8)}


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        body = b"".join(s(i) if et == STR else struct.pack("<" + FMT[et], i) for i in items)
        return struct.pack("<IQ", et, len(items)) + body
    return struct.pack("<" + FMT[t], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, ggml_type, ne innermost first)]."""
    infos, data, offset = b"", b"", 0
    for name, gt, ne in tensors:
        elems, nbytes = GGML[gt]
        n = 1
        for d in ne:
            n *= d
        size = n // elems * nbytes
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", gt, offset)
        blob = bytes((i * 37 + len(name)) % 251 for i in range(size))
        pad = -size % alignment
        data += blob + b"\0" * pad
        offset += size + pad
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    head += b"".join(s(k) + struct.pack("<I", t) + value(t, v) for k, t, v in kvs) + infos
    head += b"\0" * (-len(head) % alignment)
    return head + data


ALL_KV = [("u8", U8, 200), ("i8", I8, -5), ("u16", U16, 60000), ("i16", I16, -3),
          ("u32", U32, 4000000000), ("i32", I32, -7), ("f32", F32, 1.5), ("bool", BOOL, True),
          ("str", STR, "hello"), ("u64", U64, 2**63), ("i64", I64, -2**40), ("f64", F64, 0.25),
          ("arr.u8", ARR, (U8, [1, 2])), ("arr.i32", ARR, (I32, [-1, 5])),
          ("arr.f32", ARR, (F32, [0.5, -2.0])), ("arr.bool", ARR, (BOOL, [True, False])),
          ("arr.str", ARR, (STR, ["a", "", "<0x00>"])), ("arr.empty", ARR, (U64, []))]

SEEDS = {
    "empty": gguf([], []),
    "all_value_types": gguf(ALL_KV, []),
    "all_tensor_types": gguf([("general.architecture", STR, "gemma4")],
                             [("t%d" % gt, gt, [GGML[gt][0] * (1 if GGML[gt][0] > 1 else 3), 2])
                              for gt in sorted(GGML)]),
    "alignment_64": gguf([("general.alignment", U32, 64)],
                         [("a", 0, [3]), ("b.weight", 14, [256, 1, 1, 2]), ("c", 8, [32])],
                         alignment=64),
    "version_2": gguf([("k", U32, 1)], [("w", 1, [4, 2])], version=2),
    "empty_and_scalar": gguf([], [("empty", 2, [32, 0]), ("scalar", 0, []), ("after", 0, [2])]),
    "gemma4_like": gguf(
        [("general.architecture", STR, "gemma4"), ("gemma4.block_count", U32, 2),
         ("gemma4.feed_forward_length", ARR, (U32, [64, 128])),
         ("gemma4.attention.sliding_window_pattern", ARR, (BOOL, [True, False])),
         ("gemma4.attention.layer_norm_rms_epsilon", F32, 1e-6),
         ("tokenizer.ggml.model", STR, "gemma4"),
         ("tokenizer.ggml.tokens", ARR, (STR, ["<pad>", "<eos>", "<bos>", "\u2581a"])),
         ("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0])),
         ("tokenizer.ggml.token_type", ARR, (I32, [3, 3, 3, 1]))],
        [("token_embd.weight", 2, [32, 4]), ("blk.0.attn_q.weight", 12, [256, 1]),
         ("output_norm.weight", 0, [32]), ("layer_output_scale.weight", 0, [1])]),
}

os.makedirs(OUT, exist_ok=True)
for name, blob in SEEDS.items():
    with open(os.path.join(OUT, name + ".gguf"), "wb") as f:
        f.write(blob)
