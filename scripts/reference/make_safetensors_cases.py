#!/usr/bin/env python3
"""Writes the .safetensors fixtures for tests/unit/test_safetensors.c.

tests/fixtures/safetensors/
  valid/     small files with known values: one per dtype family written by
             hand (struct), and python_lib.safetensors written by the real
             `safetensors` library (safetensors.torch.save_file).
  hostile/   one file per rule our reader enforces, each breaking only that rule.
  manifest.json  for every file: what it holds or breaks, and what the Python
             library itself says when it loads it ("ok" or its error), so a
             difference between the two readers is written down, not guessed.

Also, with --verify FILE: loads a file written by sdrepl's writer with the
Python library and checks it holds python_lib.safetensors' tensors (the unit
test writes that file byte for byte; this shows Python reads our output).

Run from the repository root with the reference venv (torch + safetensors):
    .venv-torch/bin/python scripts/reference/make_safetensors_cases.py
The output is committed; tests never need Python.
"""
import json
import os
import struct
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "safetensors")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds", "safetensors")


def pack(header, data=b"", pad=True):
    """8-byte length + header (JSON text or bytes, space-padded to 8 like the library) + data."""
    hb = header.encode() if isinstance(header, str) else header
    if pad:
        hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


def entry(name, dtype, shape, begin, end):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        name, dtype, json.dumps(shape).replace(" ", ""), begin, end)


def python_says(blob):
    """What the Python library makes of a file: 'ok' or its error. safe_open
    checks the header; get_tensor then reads each tensor (torch 1.13 cannot
    make an empty tensor from a buffer, so those are only checked for shape)."""
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        tmp.write(blob)
        tmp.flush()
        try:
            with safe_open(tmp.name, framework="pt") as f:
                for k in f.keys():
                    shape = f.get_slice(k).get_shape()
                    if 0 not in shape:
                        f.get_tensor(k)
            return "ok"
        except Exception as e:  # the library raises several types; record whichever
            return "%s: %s" % (type(e).__name__, e)


# ---- valid files, values the C test knows ------------------------------------

def valid_files():
    f32 = struct.pack("<6f", -1.5, 0.0, 0.25, 1.0, 2.5, 1024.0)
    meta = '"__metadata__":{"format":"pt","note":"hand-made"}'
    yield "f32", pack("{%s,%s}" % (meta, entry("w", "F32", [2, 3], 0, 24)), f32), \
        "F32 w (2,3) = -1.5 0 0.25 1 2.5 1024; metadata format=pt note=hand-made"

    f16 = struct.pack("<4H", 0x3C00, 0xC000, 0x3800, 0x7BFF)  # 1, -2, 0.5, 65504
    yield "f16", pack("{%s}" % entry("h", "F16", [4], 0, 8), f16), "F16 h (4) = 1 -2 0.5 65504"

    bf16 = struct.pack("<3H", 0x3F80, 0xC040, 0x3E20)  # 1, -3, 0.15625
    yield "bf16", pack("{%s}" % entry("b", "BF16", [3], 0, 6), bf16), "BF16 b (3) = 1 -3 0.15625"

    i64 = struct.pack("<4q", 1, -2, 1 << 40, -(1 << 62))
    yield "i64", pack("{%s}" % entry("ids", "I64", [2, 2], 0, 32), i64), \
        "I64 ids (2,2) = 1 -2 2^40 -2^62"

    # Every other dtype, a scalar, and empty tensors at the start, middle and end;
    # the header lists them out of data order on purpose.
    parts = [("d", "F64", [], struct.pack("<d", 3.25)),
             ("e0", "F32", [0, 3], b""),
             ("i", "I32", [2], struct.pack("<2i", -7, 7)),
             ("s", "I16", [2], struct.pack("<2h", -300, 300)),
             ("e1", "I64", [5, 0], b""),
             ("c", "I8", [2], struct.pack("<2b", -5, 5)),
             ("u", "U8", [3], bytes([0, 128, 255])),
             ("t", "BOOL", [2], bytes([1, 0])),
             ("e2", "BF16", [0], b"")]
    data, ents, off = b"", [], 0
    for name, dt, shape, raw in parts:
        ents.append(entry(name, dt, shape, off, off + len(raw)))
        data += raw
        off += len(raw)
    order = [6, 0, 3, 8, 1, 5, 2, 7, 4]
    yield "mixed", pack("{%s}" % ",".join(ents[k] for k in order), data), \
        "every dtype; d F64 () = 3.25; empty e0 (0,3) e1 (5,0) e2 (0); i I32 -7 7; s I16 -300 300; " \
        "c I8 -5 5; u U8 0 128 255; t BOOL 1 0"

    yield "empty_file", pack("{}"), "no tensors at all"
    yield "metadata_null", pack('{"__metadata__":null,%s}' % entry("x", "U8", [1], 0, 1), b"\x2a"), \
        "__metadata__ null is allowed"
    yield "unpadded", pack("{%s}" % entry("x", "U8", [3], 0, 3), b"abc", pad=False), \
        "header not padded to 8 (older writers): still valid"
    yield "unknown_field", pack('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1,{"a":null}]}}',
                                b"z"), "unknown keys in an entry are ignored, as serde does"


def python_lib_tensors():
    """The tensors of python_lib.safetensors; the C test writes the same ones."""
    return {
        "alpha.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1,
        "beta.half": torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16),
        "gamma.bf16": torch.tensor([[1.0, -3.0]], dtype=torch.bfloat16),
        "delta.ids": torch.tensor([1, -2, 1 << 40], dtype=torch.int64),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }


# ---- hostile files: one rule each ------------------------------------------

def hostile_files():
    ok = entry("a", "F32", [1], 0, 4)
    four = b"\0" * 4
    yield "short_file", b"\x08\0\0\0\0", "shorter than the 8-byte length"
    yield "header_truncated", struct.pack("<Q", 200) + b'{"a":{"dtype":"F32"', \
        "header length larger than the file"
    yield "header_huge_length", struct.pack("<Q", 1 << 63) + b"{}      ", "header length 2^63"
    yield "header_over_100mb", struct.pack("<Q", 100_000_001) + b"{}      ", \
        "header length just over the 100 MB limit"
    yield "data_truncated", pack("{%s,%s}" % (ok, entry("b", "F32", [4], 4, 20)), b"\0" * 10), \
        "last tensor's data cut short"
    yield "out_of_range", pack("{%s}" % entry("a", "F32", [1 << 38], 0, 1 << 40), four), \
        "offsets far past the data section"
    yield "overlap", pack("{%s,%s}" % (entry("a", "F32", [2], 0, 8), entry("b", "F32", [2], 4, 12)),
                          b"\0" * 12), "two ranges overlap"
    yield "same_range", pack("{%s,%s}" % (entry("a", "F32", [1], 0, 4), entry("b", "F32", [1], 0, 4)),
                             four), "two tensors share one range"
    yield "gap", pack("{%s,%s}" % (ok, entry("b", "F32", [1], 8, 12)), b"\0" * 12), \
        "a hole between two ranges"
    yield "trailing_bytes", pack("{%s}" % ok, b"\0" * 8), "bytes after the last tensor"
    yield "bad_dtype", pack("{%s}" % entry("a", "F17", [1], 0, 4), four), "unknown dtype"
    yield "unsupported_dtype", pack("{%s}" % entry("a", "U16", [2], 0, 4), four), \
        "a dtype the library knows and we do not"
    yield "size_mismatch", pack("{%s}" % entry("a", "F32", [3], 0, 8), b"\0" * 8), \
        "shape times dtype size differs from the range"
    yield "duplicate_name", pack("{%s,%s}" % (ok, entry("a", "F32", [1], 4, 8)), b"\0" * 8), \
        "one name twice (serde keeps the last one)"
    yield "metadata_not_string", pack('{"__metadata__":{"format":1},%s}' % ok, four), \
        "a metadata value that is a number"
    yield "metadata_not_object", pack('{"__metadata__":["pt"],%s}' % ok, four), \
        "__metadata__ a list"
    yield "metadata_twice", pack('{"__metadata__":{},"__metadata__":{},%s}' % ok, four), \
        "two __metadata__ keys"
    yield "negative_offset", pack('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', four), \
        "a negative offset"
    yield "float_offset", pack('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}', four), \
        "a fractional offset"
    yield "offset_too_big", pack('{"a":{"dtype":"U8","shape":[0],"data_offsets":[1e300,1e300]}}'), \
        "an offset beyond 2^53"
    yield "offsets_three", pack('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', four), \
        "data_offsets with three numbers"
    yield "end_before_begin", pack("{%s}" % entry("a", "U8", [0], 4, 0), four), "end < begin"
    yield "shape_not_list", pack('{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', four), \
        "shape a number"
    yield "shape_negative", pack('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', four), \
        "a negative dimension"
    yield "shape_float", pack('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', four), \
        "a fractional dimension"
    yield "too_many_dims", pack("{%s}" % entry("a", "F32", [1] * 9, 0, 4), four), \
        "9 dimensions (the Python library allows any number; we allow 8)"
    yield "element_overflow", pack("{%s}" % entry("a", "F32", [1 << 32, 1 << 32, 1 << 32], 0, 4), four), \
        "element count overflows 64 bits"
    yield "missing_offsets", pack('{"a":{"dtype":"F32","shape":[1]}}', four), "no data_offsets"
    yield "entry_not_object", pack('{"a":[1,2]}'), "a tensor entry that is a list"
    yield "not_json", pack('{"a":{"dtype":"F32",,}}'), "malformed JSON"
    yield "trailing_garbage", pack("{%s}x" % ok, four), "text after the JSON object"
    yield "not_brace", pack(" {%s}" % ok, four), \
        "header starting with a space (0.4.x accepts this; newer versions refuse)"
    yield "nul_in_header", pack("{%s}\0" % ok, four), "a NUL byte after the JSON"
    yield "bad_utf8", pack(b'{"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four), \
        "a name that is not UTF-8"
    yield "control_char", pack("{\x01%s}" % ok, four), "a control character between tokens"
    yield "control_in_name", pack('{"a\x01":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four), \
        "a raw control character inside a name"
    yield "nul_escape", pack('{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four), \
        "a name with \\u0000 (C strings end there; Python keeps it)"
    yield "deep_nesting", pack('{"a":' + "[" * 5000 + "]" * 5000 + "}"), \
        "5000 nested lists (past cJSON's limit too)"
    yield "nested_128", pack('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":' +
                             "[" * 126 + "]" * 126 + "}}", four), \
        "128 levels: one past serde_json's limit, inside an ignored field"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        got = {}
        with safe_open(sys.argv[2], framework="pt") as f:
            for k in f.keys():
                got[k] = f.get_tensor(k)
            meta = f.metadata()
        want = python_lib_tensors()
        assert sorted(got) == sorted(want), (sorted(got), sorted(want))
        for k, v in want.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape and torch.equal(got[k], v), k
        assert meta == {"format": "pt"}, meta
        print("verified with safetensors %s: %s holds python_lib.safetensors' %d tensors"
              % (__import__("safetensors").__version__, sys.argv[2], len(got)))
        return

    for sub in ("valid", "hostile"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    os.makedirs(SEEDS, exist_ok=True)
    manifest = {"safetensors_version": __import__("safetensors").__version__, "valid": {}, "hostile": {}}

    for name, blob, what in valid_files():
        with open(os.path.join(OUT, "valid", name + ".safetensors"), "wb") as f:
            f.write(blob)
        manifest["valid"][name] = {"holds": what, "python": python_says(blob)}

    path = os.path.join(OUT, "valid", "python_lib.safetensors")
    save_file(python_lib_tensors(), path, metadata={"format": "pt"})
    with open(path, "rb") as f:
        manifest["valid"]["python_lib"] = {
            "holds": "written by safetensors.torch.save_file: " + ", ".join(
                "%s %s %s" % (k, str(v.dtype)[6:], tuple(v.shape)) for k, v in python_lib_tensors().items()),
            "python": python_says(f.read())}

    for name, blob, what in hostile_files():
        with open(os.path.join(OUT, "hostile", name + ".safetensors"), "wb") as f:
            f.write(blob)
        manifest["hostile"][name] = {"breaks": what, "python": python_says(blob)}

    for name in ("f32", "mixed", "python_lib", "metadata_null"):
        with open(os.path.join(OUT, "valid", name + ".safetensors"), "rb") as f:
            blob = f.read()
        with open(os.path.join(SEEDS, name + ".safetensors"), "wb") as f:
            f.write(blob)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for group in ("valid", "hostile"):
        for name, info in sorted(manifest[group].items()):
            print("%-8s %-22s python: %s" % (group, name, info["python"]))


if __name__ == "__main__":
    main()
