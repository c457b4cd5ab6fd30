"""One function per TF op type the converter knows: exactly those NanoDet-g's TF.js graph uses.

Each takes the builder and a node, and either appends ONNX nodes for it or folds it to a numpy
value (when everything it reads is known at conversion time). `OPS` is the whole list; the
driver refuses a graph that uses anything else before converting a single node, so a new
model fails with the op's name rather than with a wrong answer. Const and Placeholder are
handled by the reader and the driver.

TF's NHWC ops (Conv2D, MaxPool with data_format NHWC) become NCHW ONNX ops between transposes;
`GraphBuilder.transpose` removes the pairs that cancel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamwarden.inference.convert import ConversionError
from streamwarden.inference.convert.builder import GraphBuilder
from streamwarden.inference.convert.tfjs import TfNode

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _unary(onnx_op: str) -> Callable[[GraphBuilder, TfNode], None]:
    def convert(b: GraphBuilder, node: TfNode) -> None:
        b.bind(node.name, b.add(onnx_op, [b.tensor(node.inputs[0])], node.name)[0])
    return convert


def identity(b: GraphBuilder, node: TfNode) -> None:
    source = node.inputs[0]
    value = b.constant(source)
    if value is not None:
        b.fold(node.name, value)
    else:
        b.bind(node.name, b.tensor(source))


def add(b: GraphBuilder, node: TfNode) -> None:
    x, y = (b.constant(i) for i in node.inputs)
    if x is not None and y is not None:
        b.fold(node.name, np.add(x, y))
        return
    b.bind(node.name, b.add("Add", [b.tensor(i) for i in node.inputs], node.name)[0])


def leaky_relu(b: GraphBuilder, node: TfNode) -> None:
    alpha = float(node.attrs.get("alpha", 0.2))
    b.bind(node.name, b.add("LeakyRelu", [b.tensor(node.inputs[0])], node.name, alpha=alpha)[0])


def transpose(b: GraphBuilder, node: TfNode) -> None:
    perm = b.require_constant(node, 1).tolist()
    b.bind(node.name, b.transpose(b.tensor(node.inputs[0]), perm, node.name))


def pad(b: GraphBuilder, node: TfNode) -> None:
    """Pad / PadV2: paddings (rank, 2) -> ONNX's begins-then-ends; PadV2's fill value."""
    paddings = b.require_constant(node, 1).astype(np.int64)
    pads = b.initializer(np.concatenate([paddings[:, 0], paddings[:, 1]]), f"{node.name}/pads")
    inputs = [b.tensor(node.inputs[0]), pads]
    if node.op == "PadV2":
        fill = b.require_constant(node, 2).astype(np.float32).reshape(())
        inputs.append(b.initializer(fill, f"{node.name}/value"))
    b.bind(node.name, b.add("Pad", inputs, node.name, mode="constant")[0])


def concat(b: GraphBuilder, node: TfNode) -> None:
    axis = int(b.require_constant(node, len(node.inputs) - 1))
    values = [b.tensor(i) for i in node.inputs[:-1]]
    b.bind(node.name, b.add("Concat", values, node.name, axis=axis)[0])


def reshape(b: GraphBuilder, node: TfNode) -> None:
    """TF's 0 in a shape means size 0; ONNX's means "copy", unless allowzero says otherwise."""
    shape = b.require_constant(node, 1).astype(np.int64).ravel()
    extra = {"allowzero": 1} if (shape == 0).any() else {}
    b.bind(node.name, b.add("Reshape", [b.tensor(node.inputs[0]), b.initializer(
        shape, f"{node.name}/shape")], node.name, **extra)[0])


def split_v(b: GraphBuilder, node: TfNode) -> None:
    sizes = b.require_constant(node, 1).astype(np.int64).ravel()
    axis = int(b.require_constant(node, 2))
    if (sizes < 0).any():
        raise ConversionError(f"{b.source}: SplitV node {node.name}: a size of -1 needs the "
                              "input's static shape, which this converter does not track")
    outs = b.add("Split", [b.tensor(node.inputs[0]), b.initializer(sizes, f"{node.name}/split")],
                 node.name, outputs=len(sizes), axis=axis)
    for i, out in enumerate(outs):
        b.bind(node.name if i == 0 else f"{node.name}:{i}", out)


def resize_bilinear(b: GraphBuilder, node: TfNode) -> None:
    """NHWC bilinear resize to a constant height and width; TF's two flags pick ONNX's
    coordinate mode. Done in NCHW between two transposes (which ONNX Runtime's optimizer
    cancels against its neighbours): ONNX Runtime's CUDA kernel resizes an NHWC tensor wrongly
    (measured on an H200 with 1.31: values off by up to 0.43 after the first upsample, boxes
    moved by 40 % of the frame), while the CPU one gets both right. ONNX wants all four
    `sizes`: N and C come from the input's Shape (ONNX Runtime folds it to a constant).
    Resize's `axes` would avoid that, but ONNX Runtime's layout optimizer drops it and then
    refuses the model (1.32). In a graph with a free image size (`b.image`), the height and
    width scale with the image's: 26 of 416 becomes 16 of 256."""
    size = b.require_constant(node, 1).astype(np.int64).ravel()
    if node.attrs.get("align_corners"):
        mode = "align_corners"
    elif node.attrs.get("half_pixel_centers"):
        mode = "half_pixel"
    else:
        mode = "asymmetric"

    def resize(x: str) -> str:
        shape = b.add("Shape", [x], f"{node.name}/shape")[0]
        kept = b.add("Mul", [shape, b.initializer(np.array([1, 1, 0, 0], np.int64),
                                                  f"{node.name}/keep")], f"{node.name}/nc")[0]
        sizes = b.add("Add", [kept, _output_hw(b, node.name, size)], f"{node.name}/sizes")[0]
        return b.add("Resize", [x, "", "", sizes], node.name, mode="linear",
                     coordinate_transformation_mode=mode)[0]

    _in_nchw(b, node, resize)


def _output_hw(b: GraphBuilder, name: str, size: np.ndarray) -> str:
    """[0, 0, h, w]: the TF node's constant size, or that size scaled by the image's run-time
    height and width over the ones the graph was written for (exact for NanoDet's strides
    when the image's sides are multiples of 32)."""
    if b.image is None:
        return b.initializer(np.array([0, 0, *size], np.int64), f"{name}/hw")
    image = b.image
    hw = b.add("Shape", [image.name], f"{name}/image_hw", start=image.start,
               end=image.start + 2)[0]
    scaled = b.add("Mul", [hw, b.initializer(size, f"{name}/size")], f"{name}/scaled")[0]
    out = b.add("Div", [scaled, b.initializer(np.array([image.height, image.width], np.int64),
                                              f"{name}/written")], f"{name}/out_hw")[0]
    return b.add("Concat", [b.initializer(np.array([0, 0], np.int64), f"{name}/lead"), out],
                 f"{name}/hw", axis=0)[0]


def _window(node: TfNode, key: str, default: int) -> list[int]:
    """The spatial part of a 4-element per-dimension attribute (strides, ksize, dilations)."""
    values = node.attrs.get(key) or [default] * 4
    return values[1:3] if node.attrs.get("data_format", "NHWC") == "NHWC" else values[2:4]


def _padding(b: GraphBuilder, node: TfNode) -> dict:
    padding = node.attrs.get("padding", "VALID")
    if padding == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}  # TF puts the odd pixel at the end, as SAME_UPPER
    if padding == "EXPLICIT":
        explicit = node.attrs.get("explicit_paddings", [])
        h, w = (1, 2) if node.attrs.get("data_format", "NHWC") == "NHWC" else (2, 3)
        return {"pads": [explicit[2 * h], explicit[2 * w], explicit[2 * h + 1],
                         explicit[2 * w + 1]]}
    raise ConversionError(f"{b.source}: {node.op} node {node.name}: padding {padding!r}")


def _in_nchw(b: GraphBuilder, node: TfNode, make: Callable[[str], str]) -> None:
    """Run `make` (input name -> output name, both NCHW) on the node's input, whatever its
    data_format."""
    x = b.tensor(node.inputs[0])
    if node.attrs.get("data_format", "NHWC") == "NHWC":
        y = make(b.transpose(x, TO_NCHW, f"{node.name}/nchw"))
        b.bind(node.name, b.transpose(y, TO_NHWC, f"{node.name}/nhwc"))
    else:
        b.bind(node.name, make(x))


def conv2d(b: GraphBuilder, node: TfNode) -> None:
    """Conv2D with a constant HWIO kernel -> ONNX Conv (OIHW). TF.js has no grouped Conv2D."""
    kernel = b.require_constant(node, 1)
    weight = b.initializer(kernel.transpose(3, 2, 0, 1).astype(np.float32),
                           f"{node.name}/kernel")
    attrs = {"strides": _window(node, "strides", 1), "dilations": _window(node, "dilations", 1),
             "kernel_shape": list(kernel.shape[:2]), **_padding(b, node)}
    _in_nchw(b, node, lambda x: b.add("Conv", [x, weight], node.name, **attrs)[0])


def max_pool(b: GraphBuilder, node: TfNode) -> None:
    attrs = {"kernel_shape": _window(node, "ksize", 1), "strides": _window(node, "strides", 1),
             **_padding(b, node)}
    _in_nchw(b, node, lambda x: b.add("MaxPool", [x], node.name, **attrs)[0])


def sparse_to_dense(b: GraphBuilder, node: TfNode) -> None:
    """Only at conversion time: TF.js graphs exported from ONNX compute reshape targets with
    it (filling in ONNX's "copy this dimension" zeros); ONNX has no such op, and it is not
    needed once the values are known."""
    indices, shape, values, default = (b.require_constant(node, i) for i in range(4))
    dense = np.full(shape.astype(np.int64).ravel(), default, dtype=values.dtype)
    if indices.size:
        index = indices.reshape(-1, dense.ndim) if indices.ndim > 1 else indices.reshape(-1, 1)
        dense[tuple(index.T)] = values
    b.fold(node.name, dense)


OPS: dict[str, Callable[[GraphBuilder, TfNode], None]] = {
    "Identity": identity,
    "Add": add,
    "AddV2": add,
    "Sigmoid": _unary("Sigmoid"),
    "LeakyRelu": leaky_relu,
    "Transpose": transpose,
    "Pad": pad,
    "PadV2": pad,
    "ConcatV2": concat,
    "Reshape": reshape,
    "SplitV": split_v,
    "ResizeBilinear": resize_bilinear,
    "Conv2D": conv2d,
    "MaxPool": max_pool,
    "SparseToDense": sparse_to_dense,
}
