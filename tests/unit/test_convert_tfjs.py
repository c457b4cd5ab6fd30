"""The TF.js -> ONNX converter on hand-made graphs: every supported op against numpy, through
ONNX Runtime; unknown ops and broken files refused with a sentence that names them."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from streamwarden.inference.convert import ConversionError
from streamwarden.inference.convert.graph import tfjs_to_onnx
from streamwarden.inference.convert.tfjs import decode_weight, load_model
from tests.tfjs_models import (
    conv2d_valid,
    max_pool_valid,
    node,
    resize_bilinear_half_pixel,
    tensor_sig,
    write_model,
)

PAD_HW = np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.int32)
TO_NHWC, TO_NCHW = np.array([0, 2, 3, 1], np.int32), np.array([0, 3, 1, 2], np.int32)


def run(path, inputs: dict[str, np.ndarray]) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    model = tfjs_to_onnx(load_model(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return model, dict(zip(names, session.run(None, inputs), strict=True))


def test_conv_leaky_relu_add_matches_numpy(tmp_path):
    """NCHW in, NHWC convolution inside (as TF.js graphs exported from PyTorch are), a float16
    kernel, a bias, LeakyRelu and a residual Add."""
    rng = np.random.default_rng(7)
    kernel = (rng.integers(-8, 8, (3, 3, 2, 2)) / 8).astype(np.float32)  # exact in float16
    bias = np.array([0.5, -0.25], np.float32)
    path = write_model(tmp_path, [
        node("x", "Placeholder"),
        node("pad", "Pad", "x", "paddings"),
        node("nhwc", "Transpose", "pad", "to_nhwc"),
        node("conv", "Conv2D", "nhwc", "kernel", strides=[1, 1, 1, 1], padding="VALID",
             data_format="NHWC", dilations=[1, 1, 1, 1]),
        node("biased", "Add", "conv", "bias"),
        node("act", "LeakyRelu", "biased", alpha=0.1),
        node("nchw", "Transpose", "act", "to_nchw"),
        node("sum", "AddV2", "nchw", "x"),
        node("out", "Identity", "sum"),
    ], {"paddings": PAD_HW, "to_nhwc": TO_NHWC, "kernel": kernel, "bias": bias,
        "to_nchw": TO_NCHW},
        {"inputs": {"x:0": tensor_sig("x", [1, 2, 6, 6])},
         "outputs": {"out:0": tensor_sig("out", [1, 2, 6, 6])}}, float16=("kernel",))
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    model, got = run(path, {"x": x})
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)]).transpose(0, 2, 3, 1)
    y = conv2d_valid(padded, kernel) + bias
    expected = np.where(y > 0, y, 0.1 * y).transpose(0, 3, 1, 2) + x
    np.testing.assert_allclose(got["out"], expected, atol=1e-5)
    # the graph's NHWC transpose and the converter's NCHW one cancel: Conv reads Pad
    by_op = {n.op_type: n for n in model.graph.node}
    assert by_op["Conv"].input[0] == by_op["Pad"].output[0]


def head_graph(tmp_path):
    """The ops of NanoDet-g's neck and head, with the nodes in reverse (not topological)
    order and a reshape target computed by SparseToDense + AddV2, as in the real file."""
    nodes = [
        node("x", "Placeholder"),
        node("padded", "PadV2", "x", "paddings", "minus_inf"),
        node("p_nhwc", "Transpose", "padded", "to_nhwc"),
        node("pooled", "MaxPool", "p_nhwc", ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
             padding="VALID", data_format="NHWC"),
        node("up", "ResizeBilinear", "pooled", "size", align_corners=False,
             half_pixel_centers=True),
        node("x_nhwc", "Transpose", "x", "to_nhwc"),
        node("both", "ConcatV2", "up", "x_nhwc", "axis3", N=2),
        node("split", "SplitV", "both", "sizes", "axis3", num_split=2),
        node("probs", "Sigmoid", "split"),
        node("zeros_filled", "SparseToDense", "where", "dense_shape", "gathered", "zero"),
        node("shape", "AddV2", "target", "zeros_filled"),
        node("scores", "Reshape", "probs", "shape"),
        node("rest", "Reshape", "split:1", "rest_shape"),
        node("out_scores", "Identity", "scores"),
        node("out_rest", "Identity", "rest"),
    ][::-1]
    consts = {"paddings": PAD_HW, "minus_inf": np.array(-np.inf, np.float32),
              "to_nhwc": TO_NHWC, "size": np.array([6, 6], np.int32),
              "axis3": np.array(3, np.int32), "sizes": np.array([3, 5], np.int32),
              "where": np.zeros((0, 1), np.int64), "dense_shape": np.array([3], np.int32),
              "gathered": np.zeros((0,), np.int64), "zero": np.array(0, np.int64),
              "target": np.array([1, -1, 3], np.int64),
              "rest_shape": np.array([1, 36, 5], np.int32)}
    return write_model(tmp_path, nodes, consts, {
        "inputs": {"x:0": tensor_sig("x", [1, 4, 6, 6])},
        "outputs": {"out_scores:0": tensor_sig("out_scores", [1, 36, 3]),
                    "out_rest:0": tensor_sig("out_rest", [1, 36, 5])}})


def test_pool_resize_concat_split_sigmoid_reshape_match_numpy(tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 4, 6, 6)).astype(np.float32)
    model, got = run(head_graph(tmp_path), {"x": x})
    nhwc = x.transpose(0, 2, 3, 1)
    padded = np.pad(nhwc, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    up = resize_bilinear_half_pixel(max_pool_valid(padded, 3, 2), 6, 6)
    both = np.concatenate([up, nhwc], axis=3)
    np.testing.assert_allclose(got["out_scores"],
                               (1 / (1 + np.exp(-both[..., :3]))).reshape(1, -1, 3), atol=1e-5)
    np.testing.assert_allclose(got["out_rest"], both[..., 3:].reshape(1, 36, 5), atol=1e-5)
    ops = {n.op_type for n in model.graph.node}
    assert "SparseToDense" not in ops and "Where" not in ops  # folded at conversion


def test_unknown_op_is_refused_by_name(tmp_path):
    path = write_model(tmp_path, [
        node("x", "Placeholder"),
        node("act", "Relu6", "x"),
        node("soft", "Softplus", "act"),
        node("out", "Sigmoid", "soft"),
    ], {}, {"inputs": {"x:0": tensor_sig("x", [1, 4])},
            "outputs": {"out:0": tensor_sig("out", [1, 4])}})
    with pytest.raises(ConversionError) as info:
        tfjs_to_onnx(load_model(path))
    message = str(info.value)
    assert "model.json: unsupported TF op type(s): Relu6 (node act), Softplus (node soft)" \
        in message
    assert "handles: " in message and "Conv2D" in message


def test_runtime_kernel_is_refused(tmp_path):
    path = write_model(tmp_path, [
        node("x", "Placeholder"),
        node("conv", "Conv2D", "x", "x", strides=[1, 1, 1, 1], padding="VALID"),
    ], {}, {"inputs": {"x:0": tensor_sig("x", [1, 1, 1, 1])},
            "outputs": {"conv:0": tensor_sig("conv", [1, 1, 1, 1])}})
    with pytest.raises(ConversionError, match=r"Conv2D node conv: input 1 \(x\) must be a "
                                              r"constant"):
        tfjs_to_onnx(load_model(path))


def test_truncated_weights_and_bad_json_are_named(tmp_path):
    path = write_model(tmp_path / "a", [node("x", "Placeholder"), node("y", "Add", "x", "w")],
                       {"w": np.ones(4, np.float32)})
    (tmp_path / "a" / "weights.bin").write_bytes(bytes(8))
    with pytest.raises(ConversionError, match=r"weight w runs past the end of its shards"):
        load_model(path)
    bad = tmp_path / "b" / "model.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ConversionError, match=r"model.json: cannot read a TF.js model.json"):
        load_model(bad)
    layers = tmp_path / "c" / "model.json"
    layers.parent.mkdir()
    layers.write_text(json.dumps({"format": "layers-model", "modelTopology": {}}))
    with pytest.raises(ConversionError, match=r"not a TF.js graph model \(format 'layers"):
        load_model(layers)


def test_weight_shard_outside_the_folder_is_refused(tmp_path):
    path = write_model(tmp_path / "m", [node("x", "Placeholder")], {})
    model = json.loads(path.read_text())
    model["weightsManifest"][0]["paths"] = ["../secret.bin"]
    path.write_text(json.dumps(model))
    with pytest.raises(ConversionError, match=r"shard '../secret.bin' lies outside"):
        load_model(path)


def test_affine_quantized_weights_are_expanded():
    """TF.js's uint8 quantization: value = q * scale + min (for int32 weights rounded as
    JavaScript's Math.round does: halves up)."""
    data = bytes([0, 1, 2, 255])
    spec = {"name": "w", "shape": [2, 2], "dtype": "float32",
            "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}
    value, size = decode_weight(spec, data, 0)
    assert size == 4 and value.dtype == np.float32
    np.testing.assert_array_equal(value, [[-1.0, -0.5], [0.0, 126.5]])
    ints, _ = decode_weight({**spec, "dtype": "int32"}, data, 0)
    assert ints.dtype == np.int32 and ints.tolist() == [[-1, 0], [0, 127]]


def test_model_without_signature_is_refused(tmp_path):
    path = write_model(tmp_path, [node("x", "Placeholder"), node("y", "Sigmoid", "x")], {})
    with pytest.raises(ConversionError, match=r"model.json: no signature"):
        load_model(path)


def test_a_free_image_size_needs_a_three_channel_image_input(tmp_path):
    """`free_size` scales resizes by the image's run-time sides: without an image input
    (4 channels here) there is nothing to scale by, and the converter says so."""
    with pytest.raises(ConversionError, match=r"input \[1, 4, 6, 6\] is not a 3-channel image"):
        tfjs_to_onnx(load_model(head_graph(tmp_path)), free_size=True)
