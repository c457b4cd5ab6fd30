"""Assemble an ONNX graph from TF tensors: names, initializers, folded constants, transposes.

TF tensors are referenced as "node" or "node:1"; `names` maps each to the ONNX value that holds
it. Values known at conversion time (Const nodes, and what the op functions fold from them, such
as a shape computed by SparseToDense) stay numpy arrays in `known` and become initializers only
when a real node reads them, so shape arithmetic never reaches the ONNX graph.

TF.js graphs written from NCHW models are NHWC inside (a Transpose before and after every
convolution), and ONNX convolutions are NCHW, so translating each op literally puts two
transposes back to back. `transpose` drops such a pair when it composes to the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from streamwarden.inference.convert import ConversionError
from streamwarden.inference.convert.tfjs import TfNode


@dataclass(frozen=True)
class ImageInput:
    """The image input of a graph converted with a free height and width: its ONNX name,
    where its height and width lie (`start`, `start` + 1) and the size the TF graph was
    written for. Ops whose TF attributes bake that size in (a resize to 26x26) derive theirs
    from the input's run-time shape instead."""

    name: str
    start: int  # axis of the height: 2 for NCHW, 1 for NHWC
    height: int
    width: int


class GraphBuilder:
    def __init__(self, source: str, image: ImageInput | None = None) -> None:
        self.source = source
        self.image = image
        self.nodes: list[NodeProto] = []
        self.initializers: dict[str, TensorProto] = {}
        self.known: dict[str, np.ndarray] = {}
        self.names: dict[str, str] = {}
        self._transposed: dict[str, tuple[str, list[int]]] = {}  # output -> (input, perm)
        self._used: set[str] = set()

    # ---- TF tensors ------------------------------------------------------------------------

    def constant(self, ref: str) -> np.ndarray | None:
        return self.known.get(ref)

    def require_constant(self, node: TfNode, index: int) -> np.ndarray:
        """Input `index` of `node`, which the converter needs as a value (a shape, a kernel)."""
        value = self.known.get(node.inputs[index])
        if value is None:
            raise ConversionError(f"{self.source}: {node.op} node {node.name}: input {index} "
                                  f"({node.inputs[index]}) must be a constant, it is computed "
                                  "at run time")
        return value

    def tensor(self, ref: str) -> str:
        """The ONNX name holding TF tensor `ref`; a constant becomes an initializer once."""
        if ref in self.names:
            return self.names[ref]
        if ref in self.known:
            self.names[ref] = self.initializer(self.known[ref], ref)
            return self.names[ref]
        raise ConversionError(f"{self.source}: tensor {ref} is used before it is produced")

    def fold(self, ref: str, value: np.ndarray) -> None:
        """`ref` is known at conversion time: no node for it."""
        self.known[ref] = np.asarray(value)

    def bind(self, ref: str, onnx_name: str) -> None:
        self.names[ref] = onnx_name

    # ---- ONNX values -----------------------------------------------------------------------

    def unique(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._used:
            name, i = f"{hint}__{i}", i + 1
        self._used.add(name)
        return name

    def initializer(self, value: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        self.initializers[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def add(self, op: str, inputs: list[str], hint: str, outputs: int = 1, **attrs) -> list[str]:
        """Append one ONNX node; returns its output names (derived from `hint`)."""
        names = [self.unique(hint if i == 0 else f"{hint}:{i}") for i in range(outputs)]
        node = helper.make_node(op, inputs, names, name=self.unique(f"{hint}/{op}"), **attrs)
        self.nodes.append(node)
        return names

    def transpose(self, value: str, perm: list[int], hint: str) -> str:
        """Transpose `value`; when `value` is itself a transpose that this one would undo,
        return what that one read instead."""
        if value in self._transposed:
            source, first = self._transposed[value]
            if [first[p] for p in perm] == list(range(len(perm))):
                return source
        perm = [int(p) for p in perm]
        out = self.add("Transpose", [value], hint, perm=perm)[0]
        self._transposed[out] = (value, perm)
        return out

    def live(self, outputs: list[str]) -> tuple[list[NodeProto], list[TensorProto]]:
        """The nodes and initializers the outputs depend on, in order: the transposes that
        `transpose` made redundant, and the constants only they read, are left out."""
        needed, keep = set(outputs), []
        for node in reversed(self.nodes):
            if needed.intersection(node.output):
                keep.append(node)
                needed.update(node.input)
        return keep[::-1], [t for n, t in self.initializers.items() if n in needed]
