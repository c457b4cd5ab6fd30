"""Read a TF.js "graph-model": `model.json` plus its binary weight shards.

`modelTopology.node` is a TensorFlow GraphDef written as JSON (attributes in protobuf's JSON
mapping: 64-bit integers as strings, `s` as base64); `weightsManifest` lists groups of shard
files, read back to back, holding every Const node's value in order, each with a name, shape
and dtype. A weight may be stored quantized (`quantization`: float16, or uint8/uint16 with a
scale and minimum): it is expanded back to its original dtype here, so the converted model
carries the very values TF.js would compute with. Int64 constants are stored as int32 by TF.js;
the Const node's own dtype says what they were, and they are cast back. The `signature`
gives the inputs' and outputs' names, dtypes and shapes, which ONNX needs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamwarden.inference.convert import ConversionError

STORED_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
QUANTIZED_DTYPES = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64,
             "DT_BOOL": np.bool_}


@dataclass
class TfNode:
    """One GraphDef node: data inputs as tensor references ("name" or "name:1"), decoded attrs.

    Control inputs ("^name") only order execution in TensorFlow and are dropped.
    """

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TensorSpec:
    name: str  # tensor reference, e.g. "input_1" or "Identity_2"
    dtype: type
    shape: list[int | None]  # None: unknown size


@dataclass
class TfjsModel:
    nodes: list[TfNode]  # every node except Const, in file order
    constants: dict[str, np.ndarray]  # Const node name -> value
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: str = "model.json"  # for error messages


def tensor_ref(name: str) -> str:
    """"x:0" and "x" are the same tensor; other output indices keep their suffix."""
    return name[:-2] if name.endswith(":0") else name


def decode_attr(value: dict) -> Any:
    """One AttrValue in protobuf JSON -> a plain Python value."""
    if "list" in value:
        items = value["list"]
        for key in ("i", "f", "s", "b", "type", "shape"):
            if key in items:
                return [decode_attr({key: v}) for v in items[key]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", "replace")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        return shape_dims(value["shape"])
    return value  # "tensor" and friends: kept as is


def shape_dims(shape: dict) -> list[int | None]:
    if shape.get("unknownRank"):
        raise ConversionError("a tensor shape of unknown rank is not supported")
    dims = [int(d.get("size", -1)) for d in shape.get("dim", [])]
    return [d if d >= 0 else None for d in dims]


def read_weights(manifest: list[dict], read_shard: Callable[[str], bytes]) -> dict[str, np.ndarray]:
    """Every weight of every group, decoded and de-quantized, by name."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join(read_shard(path) for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            value, size = decode_weight(spec, data, offset)
            weights[spec["name"]] = value
            offset += size
        if offset != len(data):
            raise ConversionError(f"weight shards {group['paths']} hold {len(data)} bytes but "
                                  f"the manifest describes {offset}")
    return weights


def decode_weight(spec: dict, data: bytes, offset: int) -> tuple[np.ndarray, int]:
    """One weight at `offset`: (value in its original dtype, bytes it took)."""
    name, shape = spec["name"], [int(d) for d in spec["shape"]]
    count = int(np.prod(shape, dtype=np.int64))
    quantization = spec.get("quantization")
    stored_name = quantization["dtype"] if quantization else spec["dtype"]
    stored = QUANTIZED_DTYPES.get(stored_name) if quantization else STORED_DTYPES.get(stored_name)
    if stored is None:
        raise ConversionError(f"weight {name}: dtype {stored_name!r} is not supported")
    size = count * np.dtype(stored).itemsize
    if offset + size > len(data):
        raise ConversionError(f"weight {name} runs past the end of its shards")
    raw: np.ndarray = np.frombuffer(data, stored, count, offset)
    target = STORED_DTYPES.get(spec["dtype"], np.float32)
    if quantization and stored_name != "float16":  # affine: q * scale + min
        value = raw.astype(np.float32) * quantization["scale"] + quantization["min"]
        value = np.floor(value + 0.5) if target is np.int32 else value  # JS Math.round
    else:
        value = raw
    return value.astype(target).reshape(shape), size


def parse_model(model: dict, read_shard: Callable[[str], bytes], source: str) -> TfjsModel:
    """A loaded model.json (and a way to read its shards) -> nodes, constants, signature."""
    if model.get("format", "graph-model") != "graph-model" or "modelTopology" not in model:
        raise ConversionError(f"{source}: not a TF.js graph model (format "
                              f"{model.get('format')!r})")
    weights = read_weights(model.get("weightsManifest", []), read_shard)
    nodes: list[TfNode] = []
    constants: dict[str, np.ndarray] = {}
    for raw in model["modelTopology"].get("node", []):
        attrs = {k: decode_attr(v) for k, v in raw.get("attr", {}).items()}
        if raw["op"] == "Const":
            constants[raw["name"]] = const_value(raw["name"], attrs, weights, source)
            continue
        node_inputs = [tensor_ref(i) for i in raw.get("input", []) if not i.startswith("^")]
        nodes.append(TfNode(raw["name"], raw["op"], node_inputs, attrs))
    inputs, outputs = signature(model.get("signature", {}), source)
    return TfjsModel(nodes, constants, inputs, outputs, source)


def const_value(name: str, attrs: dict, weights: dict[str, np.ndarray],
                source: str) -> np.ndarray:
    if name not in weights:
        raise ConversionError(f"{source}: Const {name} has no entry in weightsManifest")
    dtype = TF_DTYPES.get(attrs.get("dtype", "DT_FLOAT"))
    if dtype is None:
        raise ConversionError(f"{source}: Const {name} has dtype {attrs.get('dtype')}, which is "
                              "not supported")
    return weights[name].astype(dtype)


def signature(sig: dict, source: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The model's inputs and outputs with dtypes and shapes, as the TF.js converter records
    them for every SavedModel or Keras conversion (ONNX wants both; a graph without one is
    refused rather than guessed at)."""
    if not sig.get("inputs") or not sig.get("outputs"):
        raise ConversionError(f"{source}: no signature (inputs and outputs) in model.json")

    def spec(entry: dict) -> TensorSpec:
        dtype = TF_DTYPES.get(entry.get("dtype", "DT_FLOAT"))
        if dtype is None:
            raise ConversionError(f"{source}: signature tensor {entry['name']} has dtype "
                                  f"{entry.get('dtype')}, which is not supported")
        return TensorSpec(tensor_ref(entry["name"]), dtype,
                          shape_dims(entry.get("tensorShape", {})))

    return [spec(e) for e in sig["inputs"].values()], [spec(e) for e in sig["outputs"].values()]


def load_model(path: Path) -> TfjsModel:
    """model.json at `path`, its shards next to it (as TF.js itself resolves them)."""
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot read a TF.js model.json: {exc}") from None

    def read_shard(relative: str) -> bytes:
        shard = (path.parent / relative).resolve()
        if path.parent.resolve() not in shard.parents:
            raise ConversionError(f"{path}: weight shard {relative!r} lies outside its folder")
        try:
            return shard.read_bytes()
        except OSError as exc:
            raise ConversionError(f"{path}: weight shard {relative} cannot be read: {exc}") \
                from None

    return parse_model(model, read_shard, str(path))
