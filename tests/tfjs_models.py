"""Tiny TF.js graph models written in the test: model.json (a GraphDef as protobuf JSON) plus a
weights file, byte for byte what the TF.js converter writes, and numpy references for the ops.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DT = {np.dtype(np.float32): "DT_FLOAT", np.dtype(np.int32): "DT_INT32",
      np.dtype(np.int64): "DT_INT64"}


def attr(value) -> dict:
    """A Python value as an AttrValue in protobuf's JSON mapping (int64 as strings, s base64)."""
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, list):
        return {"list": {"i": [str(v) for v in value]}}
    raise TypeError(value)


def node(name: str, op: str, *inputs: str, **attrs) -> dict:
    return {"name": name, "op": op, "input": list(inputs),
            "attr": {"T": {"type": "DT_FLOAT"}, **{k: attr(v) for k, v in attrs.items()}}}


def write_model(folder: Path, nodes: list[dict], consts: dict[str, np.ndarray],
                signature: dict | None = None, float16: tuple[str, ...] = ()) -> Path:
    """model.json + weights.bin; int64 constants are stored as int32 (as TF.js does), the
    weights named in `float16` stored quantized to float16."""
    data, manifest, const_nodes = b"", [], []
    for name, value in consts.items():
        const_nodes.append({"name": name, "op": "Const", "attr": {
            "dtype": {"type": DT[value.dtype]},
            "value": {"tensor": {"dtype": DT[value.dtype], "tensorShape": {}}}}})
        entry = {"name": name, "shape": list(value.shape),
                 "dtype": "float32" if value.dtype == np.float32 else "int32"}
        if name in float16:
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            data += value.astype(np.float16).tobytes()
        else:
            data += value.astype(np.float32 if value.dtype == np.float32 else np.int32).tobytes()
        manifest.append(entry)
    model = {"format": "graph-model", "generatedBy": "test", "convertedBy": "test",
             "modelTopology": {"node": const_nodes + nodes, "library": {}, "versions": {}},
             "weightsManifest": [{"paths": ["weights.bin"], "weights": manifest}]}
    if signature:
        model["signature"] = signature
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_bytes(data)
    path = folder / "model.json"
    path.write_text(json.dumps(model))
    return path


def tensor_sig(name: str, shape: list[int]) -> dict:
    return {"name": f"{name}:0", "dtype": "DT_FLOAT",
            "tensorShape": {"dim": [{"size": str(d)} for d in shape]}}


# ---- numpy references (NHWC, as TensorFlow computes them) ----------------------------------

def conv2d_valid(x: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    kh, kw = kernel.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel)


def max_pool_valid(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    windows = sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


def resize_bilinear_half_pixel(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """TensorFlow's ResizeBilinear with half_pixel_centers=True, align_corners=False."""
    def taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
        low = np.floor(src)
        frac = src - low
        return (np.clip(low, 0, in_size - 1).astype(int),
                np.clip(low + 1, 0, in_size - 1).astype(int), frac)

    y0, y1, fy = taps(height, x.shape[1])
    x0, x1, fx = taps(width, x.shape[2])
    top = x[:, y0][:, :, x0] * (1 - fx)[:, None] + x[:, y0][:, :, x1] * fx[:, None]
    bottom = x[:, y1][:, :, x0] * (1 - fx)[:, None] + x[:, y1][:, :, x1] * fx[:, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
