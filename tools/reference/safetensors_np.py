"""Safetensors reading and writing with numpy, and the BF16 / F16 / F8_E4M3 codecs.

Written from the format description (spec 3.1, 3.3) because torch 1.13 has no float8 dtype and the
reference must not depend on the `safetensors` package. A file is: an 8-byte little-endian u64 header
length N, an N-byte JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
then the raw little-endian row-major data; offsets are relative to the start of the data section.

Everything decoded here is exact: BF16, F16 and E4M3 values are all representable in float32, and the
FP8 block dequantization (value x block multiplier) is done in float64, where it is exact as well
(a 4-bit significand times a 24-bit one fits in 53 bits).
"""

import json
import math
import os
import struct

import numpy as np

# Element sizes of the dtypes this reference understands.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I64": 8, "I32": 4, "U8": 1}
E4M3_MAX = 448.0


class CheckpointError(Exception):
    """A file or tensor does not match what the format or the config requires."""


# ---------------------------------------------------------------------------------------------------
# Codecs


def _e4m3_table():
    """The 256 values of float8_e4m3fn, from the format definition (spec 3.3).

    Bit layout S.EEEE.MMM, exponent bias 7; exponent field 0 is subnormal: 2^-6 * m/8; there are no
    infinities and S.1111.111 is NaN; the largest finite value is 0.1111.110 = 448.
    """
    table = np.empty(256, dtype=np.float64)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exponent = (code >> 3) & 0xF
        mantissa = code & 0x7
        if exponent == 0xF and mantissa == 0x7:
            table[code] = math.nan
        elif exponent == 0:
            table[code] = sign * 2.0**-6 * (mantissa / 8.0)
        else:
            table[code] = sign * 2.0 ** (exponent - 7) * (1.0 + mantissa / 8.0)
    return table


E4M3_TABLE = _e4m3_table()  # [256] float64, exact
# Non-negative finite codes 0x00..0x7E have strictly increasing values: the encoder searches them.
_E4M3_POSITIVE = E4M3_TABLE[:0x7F].copy()  # [127]


def decode_e4m3(codes):
    """uint8 codes -> float64 values (exact)."""
    return E4M3_TABLE[np.asarray(codes, dtype=np.uint8)]


def encode_e4m3(values):
    """float values -> uint8 e4m3fn codes, round to nearest, ties to even code; saturates at +-448.

    Values beyond 448 only arise from rounding noise in x / (amax / 448); they saturate rather than
    become NaN (there is no infinity to round to). NaN input is an error.
    """
    x = np.asarray(values, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("encode_e4m3: NaN input")
    magnitude = np.minimum(np.abs(x), E4M3_MAX)
    upper = np.searchsorted(_E4M3_POSITIVE, magnitude, side="left")  # first code with value >= |x|
    upper = np.minimum(upper, 0x7E)
    lower = np.maximum(upper - 1, 0)
    dist_upper = _E4M3_POSITIVE[upper] - magnitude
    dist_lower = magnitude - _E4M3_POSITIVE[lower]
    # Within one binade codes and values are monotonic, so "even mantissa" is "even code".
    take_upper = (dist_upper < dist_lower) | ((dist_upper == dist_lower) & (upper % 2 == 0))
    code = np.where(take_upper, upper, lower).astype(np.uint8)
    return np.where(x < 0, code | 0x80, code).astype(np.uint8)


def decode_bf16(raw):
    """uint16 -> float32: the bf16 bits are the high half of the float32 bits."""
    return (np.asarray(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode_bf16(values):
    """float32 -> uint16 bf16 bits, round to nearest even (inputs must be finite)."""
    f = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(f).all():
        raise ValueError("encode_bf16: non-finite input")
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def block_scale_shape(shape, block=(128, 128)):
    rows, cols = shape
    return (-(-rows // block[0]), -(-cols // block[1]))


def dequantize_fp8(codes, scale, block=(128, 128)):
    """W[i, j] = e4m3(codes[i, j]) * scale[i // 128, j // 128], exactly, in float64."""
    rows, cols = codes.shape
    expanded = np.repeat(np.repeat(scale.astype(np.float64), block[0], axis=0), block[1], axis=1)
    return decode_e4m3(codes) * expanded[:rows, :cols]


def quantize_fp8(weight, block=(128, 128)):
    """float32 [rows, cols] -> (uint8 codes, float32 block multipliers) with scale = amax / 448.

    The multiplier is computed in float32 (it is stored as F32); an all-zero block gets scale 1.
    """
    w = np.asarray(weight, dtype=np.float32)
    rows, cols = w.shape
    srows, scols = block_scale_shape(w.shape, block)
    scale = np.empty((srows, scols), dtype=np.float32)
    codes = np.empty((rows, cols), dtype=np.uint8)
    for bi in range(srows):
        for bj in range(scols):
            tile = w[bi * block[0] : (bi + 1) * block[0], bj * block[1] : (bj + 1) * block[1]]
            amax = np.float32(np.abs(tile).max())
            s = np.float32(amax / np.float32(E4M3_MAX)) if amax > 0 else np.float32(1.0)
            scale[bi, bj] = s
            codes[bi * block[0] : (bi + 1) * block[0], bj * block[1] : (bj + 1) * block[1]] = encode_e4m3(
                tile.astype(np.float64) / np.float64(s)
            )
    return codes, scale


# ---------------------------------------------------------------------------------------------------
# Files


class SafetensorsFile:
    """One .safetensors file, header parsed and validated; tensors read on demand as raw numpy arrays."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointError(f"{path}: file is {size} bytes, shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > size - 8:
                raise CheckpointError(f"{path}: header length {header_len} exceeds the file size {size}")
            try:
                header = json.loads(f.read(header_len).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise CheckpointError(f"{path}: header is not valid JSON: {e}") from None
        self.data_start = 8 + header_len
        self.metadata = header.pop("__metadata__", {})
        self.entries = header
        for name, entry in header.items():
            dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
            if dtype not in DTYPE_BYTES:
                raise CheckpointError(f"{path}: tensor {name}: unsupported dtype {dtype!r}")
            if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
                raise CheckpointError(f"{path}: tensor {name}: shape {shape!r}, expected a list of sizes")
            if not (
                isinstance(offsets, list)
                and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]
            ):
                raise CheckpointError(f"{path}: tensor {name}: data_offsets {offsets!r}, expected [begin, end]")
            nbytes = DTYPE_BYTES[dtype] * int(np.prod(shape, dtype=np.int64))
            if offsets[1] - offsets[0] != nbytes:
                raise CheckpointError(
                    f"{path}: tensor {name}: data_offsets {offsets} hold {offsets[1] - offsets[0]} bytes, "
                    f"expected {nbytes} for {dtype} {shape}"
                )
            if self.data_start + offsets[1] > size:
                raise CheckpointError(
                    f"{path}: tensor {name}: data ends at byte {self.data_start + offsets[1]}, "
                    f"past the end of the file ({size} bytes; truncated?)"
                )

    def raw(self, name):
        """The stored array: float32/float64 for F32/F64, uint16 for BF16/F16 bits, uint8 for FP8 codes."""
        entry = self.entries[name]
        np_dtype = {
            "F64": "<f8",
            "F32": "<f4",
            "F16": "<u2",
            "BF16": "<u2",
            "F8_E4M3": "u1",
            "I64": "<i8",
            "I32": "<i4",
            "U8": "u1",
        }[entry["dtype"]]
        begin, end = entry["data_offsets"]
        with open(self.path, "rb") as f:
            f.seek(self.data_start + begin)
            data = f.read(end - begin)
        return np.frombuffer(data, dtype=np_dtype).reshape(entry["shape"]).copy()


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype string, numpy array already in the stored representation)}."""
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        dtype, array = tensors[name]
        np_dtype = {"F32": "<f4", "BF16": "<u2", "F16": "<u2", "F8_E4M3": "u1"}[dtype]
        blob = np.ascontiguousarray(array, dtype=np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


class Checkpoint:
    """A model directory: model.safetensors, or shards listed in model.safetensors.index.json."""

    def __init__(self, directory):
        self.directory = directory
        index_path = os.path.join(directory, "model.safetensors.index.json")
        single_path = os.path.join(directory, "model.safetensors")
        self.files = {}
        self.location = {}  # tensor name -> SafetensorsFile
        if os.path.exists(index_path):
            with open(index_path) as f:
                try:
                    weight_map = json.load(f)["weight_map"]
                except (json.JSONDecodeError, KeyError) as e:
                    raise CheckpointError(f"{index_path}: expected {{'weight_map': {{...}}}}: {e}") from None
            for name, shard in weight_map.items():
                if shard not in self.files:
                    shard_path = os.path.join(directory, shard)
                    if not os.path.exists(shard_path):
                        raise CheckpointError(f"{index_path}: tensor {name} maps to missing shard {shard}")
                    self.files[shard] = SafetensorsFile(shard_path)
                if name not in self.files[shard].entries:
                    raise CheckpointError(f"{index_path}: tensor {name} is not in shard {shard}")
                self.location[name] = self.files[shard]
        elif os.path.exists(single_path):
            sf = SafetensorsFile(single_path)
            self.files["model.safetensors"] = sf
            self.location = {name: sf for name in sf.entries}
        else:
            raise CheckpointError(f"{directory}: neither model.safetensors nor model.safetensors.index.json")

    def __contains__(self, name):
        return name in self.location

    def names(self):
        return sorted(self.location)

    def dtype(self, name):
        return self.location[name].entries[name]["dtype"]

    def shape(self, name):
        return tuple(self.location[name].entries[name]["shape"])

    def raw(self, name):
        return self.location[name].raw(name)

    def load(self, name, expected_shape=None, block=(128, 128)):
        """The tensor's exact value as float64, FP8 weights multiplied by their block scales."""
        if name not in self.location:
            raise CheckpointError(f"{self.directory}: tensor {name} is missing")
        shape = self.shape(name)
        if expected_shape is not None and shape != tuple(expected_shape):
            raise CheckpointError(
                f"{self.directory}: tensor {name} has shape {list(shape)}, expected {list(expected_shape)} from config.json"
            )
        dtype = self.dtype(name)
        raw = self.raw(name)
        if dtype in ("F32", "F64"):
            return raw.astype(np.float64)
        if dtype == "BF16":
            return decode_bf16(raw).astype(np.float64)
        if dtype == "F16":
            return raw.view(np.float16).astype(np.float64)
        if dtype == "F8_E4M3":
            scale_name = name + "_scale_inv"
            if len(shape) != 2:
                raise CheckpointError(f"{self.directory}: FP8 tensor {name} has shape {list(shape)}, expected 2-D")
            if scale_name not in self.location:
                raise CheckpointError(f"{self.directory}: FP8 tensor {name} has no {scale_name}")
            want = block_scale_shape(shape, block)
            if self.shape(scale_name) != want or self.dtype(scale_name) != "F32":
                raise CheckpointError(
                    f"{self.directory}: {scale_name} is {self.dtype(scale_name)} {list(self.shape(scale_name))}, "
                    f"expected F32 {list(want)} (ceil of {list(shape)} / {list(block)})"
                )
            return dequantize_fp8(raw, self.raw(scale_name), block)
        raise CheckpointError(f"{self.directory}: tensor {name} has dtype {dtype}, not a float type")
