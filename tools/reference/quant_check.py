#!/usr/bin/python3
"""Checks that a BF16 or FP8 checkpoint is the rounding of an F32 one drawn from the same seed.

  quant_check.py --f32 DIR --other DIR --kind bf16|fp8

For every tensor: the stored dtype follows spec 3.2 (see random_checkpoint.stored_dtype); F32 tensors
are bit-identical; BF16 bits are the round-to-nearest-even of the F32 value; FP8 tensors have an F32
`_scale_inv` of shape ceil([rows, cols] / 128) equal to amax(block) / 448 (to 1 ulp), and every code is
a nearest e4m3 value of w / scale, computed exactly or in float32 (ties to even are counted separately:
another tie rule is not an error). Prints a JSON summary; exits 1 on any failure.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from random_checkpoint import stored_dtype  # noqa: E402
from safetensors_np import (  # noqa: E402
    E4M3_MAX,
    Checkpoint,
    block_scale_shape,
    decode_e4m3,
    encode_bf16,
    encode_e4m3,
)


def _check_fp8(name, w, codes, scale, failures, stats, block=(128, 128)):
    want_shape = block_scale_shape(w.shape, block)
    if scale.shape != want_shape:
        failures.append(f"{name}_scale_inv: shape {list(scale.shape)}, expected {list(want_shape)}")
        return
    rows, cols = w.shape
    for bi in range(want_shape[0]):
        for bj in range(want_shape[1]):
            rs = slice(bi * block[0], (bi + 1) * block[0])
            cs = slice(bj * block[1], (bj + 1) * block[1])
            tile = w[rs, cs].astype(np.float64)
            s = float(scale[bi, bj])
            amax = float(np.abs(tile).max())
            expected_scale = float(np.float32(np.float32(amax) / np.float32(E4M3_MAX))) if amax > 0 else None
            if expected_scale is not None:
                rel = abs(s - expected_scale) / expected_scale
                stats["max_scale_rel_dev"] = max(stats["max_scale_rel_dev"], rel)
                if rel > 1.2e-7:  # one float32 ulp of slack for a different division order
                    failures.append(f"{name} block ({bi},{bj}): scale {s!r}, expected amax/448 = {expected_scale!r}")
                    continue
            x = tile / s
            stored = decode_e4m3(codes[rs, cs])
            nearest = decode_e4m3(encode_e4m3(x))
            # A quantizer that divides in float32 (as torch does) sees fl32(w / s), which can land exactly on
            # a midpoint the exact quotient had just passed; a nearest code of that quotient is accepted too.
            x32 = (w[rs, cs] / np.float32(s)).astype(np.float64)
            worse = (np.abs(stored - x) > np.abs(nearest - x)) & (
                np.abs(stored - x32) > np.abs(decode_e4m3(encode_e4m3(x32)) - x32)
            )
            stats["float32_quotient_roundings"] += int(((np.abs(stored - x) > np.abs(nearest - x)) & ~worse).sum())
            if worse.any():
                i, j = np.argwhere(worse)[0]
                failures.append(
                    f"{name} [{bi * block[0] + i}, {bj * block[1] + j}]: code value {stored[i, j]!r} for w/scale "
                    f"{x[i, j]!r}; the nearest e4m3 value is {nearest[i, j]!r}"
                )
            stats["tie_rule_differences"] += int(((np.abs(stored - x) == np.abs(nearest - x)) & (stored != nearest)).sum())
            # Half the e4m3 spacing at the stored value: 2^(e-4) for normals, 2^-10 for subnormals. A nearest
            # rounding keeps |w/scale - value| within it, so this ratio stays <= 1.
            magnitude = np.abs(stored)
            exponent = np.floor(np.log2(np.maximum(magnitude, 2.0**-6)))
            ratio = np.abs(stored - x) / 2.0 ** (exponent - 4)  # float32 quotients may exceed 1 by ~1e-6
            stats["max_error_over_half_spacing"] = max(stats["max_error_over_half_spacing"], float(ratio.max()))
    deq = decode_e4m3(codes) * np.repeat(np.repeat(scale.astype(np.float64), block[0], 0), block[1], 1)[:rows, :cols]
    rel = np.linalg.norm(deq - w) / max(np.linalg.norm(w), 1e-30)
    stats["max_frobenius_rel_error"] = max(stats["max_frobenius_rel_error"], float(rel))


def check(f32_dir, other_dir, kind):
    ref, other = Checkpoint(f32_dir), Checkpoint(other_dir)
    failures = []
    stats = {
        "tensors": 0,
        "fp8_tensors": 0,
        "bf16_tensors": 0,
        "max_scale_rel_dev": 0.0,
        "tie_rule_differences": 0,
        "float32_quotient_roundings": 0,
        "max_error_over_half_spacing": 0.0,
        "max_frobenius_rel_error": 0.0,
    }
    other_weights = {n for n in other.names() if not n.endswith("_scale_inv")}
    if set(ref.names()) != other_weights:
        failures.append(
            f"tensor sets differ: only in f32 {sorted(set(ref.names()) - other_weights)[:5]}, "
            f"only in {kind} {sorted(other_weights - set(ref.names()))[:5]}"
        )
    for name in ref.names():
        if name not in other:
            continue
        stats["tensors"] += 1
        want = stored_dtype(name, kind)
        have = other.dtype(name)
        if ref.dtype(name) != "F32":
            failures.append(f"{f32_dir}: {name} is {ref.dtype(name)}, expected F32")
            continue
        if have != want:
            failures.append(f"{other_dir}: {name} is {have}, expected {want} in a {kind} checkpoint (spec 3.2)")
            continue
        if ref.shape(name) != other.shape(name):
            failures.append(f"{name}: shape {list(other.shape(name))}, expected {list(ref.shape(name))}")
            continue
        w = ref.raw(name)
        if have == "F32":
            if not np.array_equal(w.view(np.uint32), other.raw(name).view(np.uint32)):
                failures.append(f"{name}: F32 values differ from the f32 checkpoint")
        elif have == "BF16":
            stats["bf16_tensors"] += 1
            mismatch = int((encode_bf16(w) != other.raw(name)).sum())
            if mismatch:
                failures.append(f"{name}: {mismatch} BF16 values are not the nearest-even rounding of the F32 ones")
        else:
            stats["fp8_tensors"] += 1
            if name + "_scale_inv" not in other or other.dtype(name + "_scale_inv") != "F32":
                failures.append(f"{name}: missing F32 {name}_scale_inv")
                continue
            _check_fp8(name, w, other.raw(name), other.raw(name + "_scale_inv"), failures, stats)
    return failures, stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--f32", required=True)
    parser.add_argument("--other", required=True)
    parser.add_argument("--kind", choices=["bf16", "fp8"], required=True)
    args = parser.parse_args()
    failures, stats = check(args.f32, args.other, args.kind)
    print(json.dumps({"kind": args.kind, "ok": not failures, "stats": stats, "failures": failures[:20]}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
