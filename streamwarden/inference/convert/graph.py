"""TF.js graph model -> ONNX model: check the op list, order the nodes, convert each, check.

The ONNX model uses opset 17 and IR version 8, which every onnxruntime this project allows
(>= 1.17) loads.
"""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np
import onnx
from onnx import helper

from streamwarden.inference.convert import ConversionError
from streamwarden.inference.convert.builder import GraphBuilder, ImageInput
from streamwarden.inference.convert.ops import OPS
from streamwarden.inference.convert.tfjs import TensorSpec, TfjsModel, TfNode

# Raised when a conversion changes what the graph computes, so that installed files made by an
# older converter are converted again (2: bilinear resizes in NCHW, for the CUDA provider;
# 3: NanoDet with a free input height and width, so wide frames are not letterboxed square).
CONVERTER_VERSION = "3"
OPSET, IR_VERSION = 17, 8


def check_ops(model: TfjsModel) -> None:
    """Refuse the whole graph, naming every op type it cannot translate, before converting."""
    unknown: dict[str, str] = {}
    for node in model.nodes:
        if node.op not in OPS and node.op != "Placeholder":
            unknown.setdefault(node.op, node.name)
    if unknown:
        listed = ", ".join(f"{op} (node {name})" for op, name in sorted(unknown.items()))
        known = ", ".join(sorted([*OPS, "Const", "Placeholder"]))
        raise ConversionError(f"{model.source}: unsupported TF op type(s): {listed}. This "
                              f"converter handles: {known}")


def topological(model: TfjsModel) -> list[TfNode]:
    """GraphDef order is not guaranteed to put producers first; Kahn's algorithm does."""
    by_name = {n.name: n for n in model.nodes}
    waiting: dict[str, int] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in model.nodes:
        producers = {i.split(":")[0] for i in node.inputs} - model.constants.keys()
        missing = producers - by_name.keys()
        if missing:
            raise ConversionError(f"{model.source}: node {node.name} reads {sorted(missing)[0]}, "
                                  "which no node produces")
        waiting[node.name] = len(producers)
        for producer in producers:
            consumers[producer].append(node.name)
    ready = deque(n.name for n in model.nodes if waiting[n.name] == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(by_name[name])
        for consumer in consumers[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                ready.append(consumer)
    if len(order) != len(model.nodes):
        raise ConversionError(f"{model.source}: the graph has a cycle")
    return order


def value_info(spec: TensorSpec, name: str,
               free: frozenset[int] | set[int] = frozenset()) -> onnx.ValueInfoProto:
    """`free`: axes whose size is left symbolic, whatever the signature says."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype))
    return helper.make_tensor_value_info(name, elem, [
        d if d is not None and i not in free else f"{name}_d{i}" for i, d in enumerate(spec.shape)])


def image_input(model: TfjsModel, name: str) -> ImageInput:
    """The one rank-4 image input (3 channels, NCHW or NHWC, fixed sides) whose height and
    width a free-size conversion leaves open."""
    shapes = [s.shape for s in model.inputs]
    if len(shapes) != 1 or len(shapes[0]) != 4:
        raise ConversionError(f"{model.source}: a free image size needs one rank-4 input, not "
                              f"{shapes}")
    shape = shapes[0]
    start = 2 if shape[1] == 3 else 1 if shape[3] == 3 else None
    height, width = (shape[start], shape[start + 1]) if start is not None else (None, None)
    if start is None or height is None or width is None:
        raise ConversionError(f"{model.source}: input {shape} is not a 3-channel image of "
                              "fixed size")
    return ImageInput(name, start, int(height), int(width))


def tfjs_to_onnx(model: TfjsModel, graph_name: str = "tfjs", *,
                 free_size: bool = False) -> onnx.ModelProto:
    """The whole model, inputs and outputs named after their TF tensors (e.g. "Identity_2").

    `free_size`: the image input's height and width (and the outputs' middle axes, which
    count cells) are symbolic, for a fully convolutional graph fed other sizes than the one
    it was written for."""
    check_ops(model)
    b = GraphBuilder(model.source)
    b.known.update(model.constants)
    for spec in model.inputs:
        b.bind(spec.name, b.unique(spec.name))
    if free_size:
        b.image = image_input(model, b.names[model.inputs[0].name])
    for node in topological(model):
        if node.op != "Placeholder":
            OPS[node.op](b, node)
    outputs = []
    for spec in model.outputs:
        name = b.unique(spec.name)  # TF names are unique, so this is spec.name itself
        b.nodes.append(helper.make_node("Identity", [b.tensor(spec.name)], [name],
                                        name=b.unique(f"{name}/Identity")))
        middle = set(range(1, len(spec.shape) - 1)) if free_size else set()
        outputs.append(value_info(spec, name, middle))
    nodes, initializers = b.live([o.name for o in outputs])
    spatial = {b.image.start, b.image.start + 1} if b.image else set()
    graph = helper.make_graph(nodes, graph_name, [value_info(s, b.names[s.name], spatial)
                                                  for s in model.inputs],
                              outputs, initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="streamwarden.inference.convert",
                                   producer_version=CONVERTER_VERSION)
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    return onnx_model
