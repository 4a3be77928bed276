#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_safetensors: a few tiny valid files laid out
the way the reference writer lays them out (header padded with spaces to 8
bytes, tensors packed in offset order), covering each dtype family, empty and
scalar tensors, and __metadata__. Run from the repository root."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_safetensors")
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
         "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def container(tensors, metadata=None):
    """tensors: list of (name, dtype, shape); data is a counting byte pattern.
    Largest element first keeps every tensor aligned, as the reference does."""
    header, offset = {}, 0
    for name, dtype, shape in sorted(tensors, key=lambda t: -SIZES[t[1]]):
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(i % 251 for i in range(offset))


SEEDS = {
    "empty_header": container([]),
    "one_f32": container([("w", "F32", [2, 3])]),
    "mixed_float": container([("a.weight", "F32", [4]), ("b.weight", "F16", [2, 2]),
                              ("c.weight", "BF16", [3]), ("d", "F64", [1])],
                             {"format": "pt"}),
    "ints_and_f8": container([("i64", "I64", [2]), ("i32", "I32", [1]), ("i16", "I16", [2]),
                              ("i8", "I8", [3]), ("u8", "U8", [1]), ("mask", "BOOL", [2]),
                              ("e4", "F8_E4M3", [2]), ("e5", "F8_E5M2", [2])]),
    "empty_and_scalar": container([("scalar", "F32", []), ("empty", "BF16", [0, 4]),
                                   ("deep", "U8", [1, 1, 1, 1, 1, 1, 1, 2])]),
}

os.makedirs(OUT, exist_ok=True)
for name, blob in SEEDS.items():
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(blob)
