"""Tiny ONNX detectors built in the test, each with a fixed answer in one of the real layouts.

The graph is `answer + 0 * mean(input)`, so ONNX Runtime really runs it on the frame and the
decoder under test sees exactly the tensor a YOLO/SSD export of that layout would produce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT = 64


def _graph_outputs(answers: dict[str, np.ndarray], path: Path, input_shape=(1, 3, INPUT, INPUT),
                   input_type=None, metadata: dict[str, str] | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Constant", [], ["zero"],
                              value=numpy_helper.from_array(np.array(0, np.float32)))]
    nodes.append(helper.make_node("Mul", ["mean", "zero"], ["nothing"]))
    outputs = []
    for name, value in answers.items():
        value = value.astype(np.float32)
        nodes.append(helper.make_node("Constant", [], [f"{name}_c"],
                                      value=numpy_helper.from_array(value)))
        nodes.append(helper.make_node("Add", [f"{name}_c", "nothing"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "fixed-answer",
        [helper.make_tensor_value_info("images", input_type or TensorProto.FLOAT,
                                       list(input_shape))], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def yolov8_model(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """(1, 4 + 2 classes, 8 candidates): one strong 'class 1' box, a weaker duplicate, noise.

    `metadata`: the model's metadata_props, as exporters write them (Ultralytics: `names`).
    """
    pred = np.zeros((1, 6, 8), np.float32)
    pred[0, :, 0] = [32, 32, 32, 16, 0.0, 0.9]   # kept
    pred[0, :, 1] = [33, 32, 32, 16, 0.0, 0.8]   # same object, suppressed by NMS
    pred[0, :, 2] = [10, 10, 4, 4, 0.1, 0.05]    # below confidence
    return _graph_outputs({"output0": pred}, path, metadata=metadata)


def yolov5_model(path: Path) -> Path:
    """(1, 8 candidates, 5 + 2): objectness times class score."""
    pred = np.zeros((1, 8, 7), np.float32)
    pred[0, 0] = [32, 32, 32, 16, 0.9, 0.0, 1.0]
    pred[0, 1] = [20, 20, 8, 8, 0.3, 1.0, 0.0]   # 0.3: below confidence
    return _graph_outputs({"output": pred}, path)


def ssd_model(path: Path) -> Path:
    boxes = np.zeros((1, 4, 4), np.float32)
    scores = np.zeros((1, 4, 2), np.float32)
    boxes[0, 0] = [0.25, 0.375, 0.75, 0.625]  # x0, y0, x1, y1 of the 64x64 input
    scores[0, 0] = [0.05, 0.9]
    return _graph_outputs({"boxes": boxes, "scores": scores}, path)


def tf_postprocessed_model(path: Path) -> Path:
    boxes = np.zeros((1, 2, 4), np.float32)
    boxes[0, 0] = [0.375, 0.25, 0.625, 0.75]  # y0, x0, y1, x1
    return _graph_outputs({"detection_boxes": boxes,
                           "detection_scores": np.array([[0.9, 0.2]], np.float32),
                           "detection_classes": np.array([[1, 0]], np.float32),
                           "num_detections": np.array([1], np.float32)}, path)


def unexpected_outputs_model(path: Path) -> Path:
    return _graph_outputs({"logits": np.zeros((1, 7), np.float32)}, path)
