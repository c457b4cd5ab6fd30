"""NanoDet-g in INT8 for the CPU: ONNX Runtime's static quantisation, calibrated on photographs.

Why: the model call is most of the CPU a detected frame costs (issue #14). This CPU class has
VNNI/AMX-INT8, where ONNX Runtime's QLinearConv with uint8 activations and int8 weights is
2.2x cheaper than fp32 on one thread (measured: 416x256, 18 ms fp32 -> 8 ms int8).

How, and why so:
- QOperator format (QLinearConv, QLinearLeakyRelu, ...), activations uint8, weights int8 per
  output channel: measured against the three other combinations on one thread at 416x416:
  QOperator u8s8 13 ms, QDQ u8s8 20 ms, QDQ s8s8 40 ms, QOperator s8s8 136 ms (ONNX Runtime
  1.32 has its fast integer kernels for u8s8).
- Calibration (min/max of every activation) on scikit-image's sample photographs (a
  dependency already; no model hub, no network), each fed as `OnnxDetector` feeds a frame,
  at 16:9 and square input sizes. Noise, which the first experiment used, has other ranges.
- Left in float: the normalisation in front of the first convolution, and everything from
  each head's Split onwards (sigmoid class scores, distance bins, box decoding). The
  Split's input holds class logits and distance bins in one tensor, and one uint8 scale for
  both crushed the logits: quantised, the scores of a person fell from 0.67 to 0.33.
- Left in float too: the anchor grid (every node fed by a Range: the cells' column and row
  centres). Its range is the input's size, not the pictures': quantised, calibrated at 416
  px wide, a centre further right than 416 px saturated, so with the widened 736x416 input
  (`tiles = "auto"`) every object right of x = 0.57 got a second box moved onto x = 0.56 (a
  car labelled on a person, a person on a car: precision 0.68 instead of 0.97 on
  bench/detect_quality.py's street).

The fp32 file stays beside the INT8 one: the `nvidia` backend and `precision = "fp32"` use it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

log = logging.getLogger("streamwarden.inference")

CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "horse", "retina",
                      "hubble_deep_field", "immunohistochemistry", "colorwheel")
CALIBRATION_SIZES = ((416, 256), (416, 416))  # 16:9 frames, square ones (or tiles)
QUANTIZED_FROM = "streamwarden.quantized_from"  # metadata: the fp32 converter's version
QUANTIZER = "streamwarden.quantizer"  # metadata: this file's version of the recipe
# 2: the anchor grid in float (a file from version 1 misplaces boxes on wide inputs)
QUANTIZER_VERSION = "2"


class QuantizationError(Exception):
    """Quantising failed; the caller keeps the fp32 model. The message says why."""


def calibration_photos() -> list[np.ndarray]:
    """scikit-image's bundled sample photographs as BGR uint8 frames (greyscale ones too)."""
    import skimage.data

    frames = []
    for name in CALIBRATION_PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.dtype != np.uint8:
            image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        frames.append(np.ascontiguousarray(image[..., 2::-1]))  # RGB(A) -> BGR
    return frames


def calibration_inputs(frames: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Each frame letterboxed to each calibration size, RGB 0-1 NCHW: what OnnxDetector
    hands the model."""
    from streamwarden.inference.detectors.base import letterbox

    for frame in frames:
        for width, height in CALIBRATION_SIZES:
            image = letterbox(frame, width, height)[0][..., ::-1]
            yield np.ascontiguousarray((image.astype(np.float32) / 255).transpose(2, 0, 1)[None])


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes to keep in float: those before the first Conv (normalisation),
    each Split with everything downstream of it (scores, bins, decoding) and each Range with
    everything downstream of it (the anchor grid, whose values grow with the input size)."""
    nodes = list(model.graph.node)
    first_conv = next(i for i, n in enumerate(nodes) if n.op_type == "Conv")
    keep = {n.name for n in nodes[:first_conv]}
    tainted: set[str] = set()
    for node in nodes:  # topological order, as ONNX requires
        if node.op_type in ("Split", "Range") or tainted.intersection(node.input):
            keep.add(node.name)
            tainted.update(node.output)
    return sorted(keep)


def current_recipe(int8: Path) -> bool:
    """Whether an INT8 file was written by this recipe (`QUANTIZER_VERSION`): an older one
    misplaces boxes on wide inputs and must not run until the set-up quantises again."""
    try:
        props = onnx.load(str(int8), load_external_data=False).metadata_props
    except Exception:  # unreadable: not ours to run
        return False
    return {p.key: p.value for p in props}.get(QUANTIZER) == QUANTIZER_VERSION


def quantize_model(fp32: Path, target: Path, frames: list[np.ndarray] | None = None) -> None:
    """Write the INT8 model of `fp32` to `target`, checked loadable by ONNX Runtime."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, inputs: Iterator[np.ndarray]) -> None:
            self.inputs = inputs

        def get_next(self) -> dict[str, np.ndarray] | None:
            value = next(self.inputs, None)
            return None if value is None else {"images": value}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            model = onnx.load(str(prepared))
            quantize_static(str(prepared), str(target), Reader(calibration_inputs(
                frames if frames is not None else calibration_photos())),
                quant_format=QuantFormat.QOperator, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=float_nodes(model))
            quantized = onnx.load(str(target))
            source = onnx.load(str(fp32), load_external_data=False)
            onnx.helper.set_model_props(quantized, {
                **{p.key: p.value for p in quantized.metadata_props},
                QUANTIZED_FROM: source.producer_version, QUANTIZER: QUANTIZER_VERSION})
            onnx.save(quantized, str(target))
            ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        except Exception as exc:  # the quantisation tool raises many kinds
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise QuantizationError(f"quantising {fp32.name} to INT8 failed: "
                                    f"{type(exc).__name__}: {detail}") from None
