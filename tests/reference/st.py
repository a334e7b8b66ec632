"""safetensors with nothing but the standard library and NumPy (DESIGN.md §3).

A file is an 8-byte little-endian header length N, N bytes of JSON
(name -> {dtype, shape, data_offsets}, plus an optional "__metadata__" of
strings), then the raw little-endian tensor bytes.
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def _bf16_to_f32(raw):
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def load(path):
    """Return (tensors, metadata): a dict name -> np.ndarray (F32/F16/BF16 as float32) and a dict of strings."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        raw = data[begin:end]
        if e["dtype"] == "BF16":
            arr = _bf16_to_f32(raw)
        elif e["dtype"] in _DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name}: dtype {e['dtype']} not supported here")
        if arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta


def save(path, tensors, metadata=None):
    """Write a dict name -> array as F32 safetensors (data 8-byte aligned)."""
    header, chunks, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        chunks.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
