"""Detectors on their real runtimes: ONNX layouts decoded right, bad models named, the built-in
person detector finds the person in a photograph and nothing in a photograph without one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamwarden.inference.detectors.base import ModelError, nms
from streamwarden.inference.detectors.blazepose import BlazePersonDetector, ssd_anchors
from streamwarden.inference.detectors.factory import DetectorSpec, build_detector
from streamwarden.inference.detectors.hog import HogPersonDetector
from streamwarden.inference.detectors.onnx import OnnxDetector
from streamwarden.inference.models import BUILTIN_MODEL
from tests import onnx_models

# 128x64 frame into a 64x64 model: scale 0.5, 16 px of padding above and below, so the
# models' box (16..48, 24..40) in input pixels is (0.25, 0.25)-(0.75, 0.75) of the frame.
FRAME = np.zeros((64, 128, 3), np.uint8)
EXPECTED_BOX = (0.25, 0.25, 0.75, 0.75)


def sample_picture(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.ndim == 3 else cv2.COLOR_GRAY2BGR)


@pytest.fixture
def labels(tmp_path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("person\ncar\n")
    return path


@pytest.mark.parametrize("build", [onnx_models.yolov8_model, onnx_models.yolov5_model,
                                   onnx_models.ssd_model, onnx_models.tf_postprocessed_model])
def test_onnx_layouts_decode_to_the_same_box(tmp_path, labels, build):
    model = build(tmp_path / "model.onnx")
    detector = OnnxDetector(model, labels, confidence=0.5)
    [detections] = detector.detect([FRAME])
    assert [d.label for d in detections] == ["car"], detections
    assert detections[0].confidence == pytest.approx(0.9, abs=1e-5)
    assert detections[0].box == pytest.approx(EXPECTED_BOX, abs=0.01)


def test_onnx_batch_and_layout_detection(tmp_path):
    detector = OnnxDetector(onnx_models.yolov8_model(tmp_path / "m.onnx"))
    assert detector.layout == "yolov8"
    assert detector.labels[:2] == ["class_0", "class_1"]  # 2 classes, no labels file
    results = detector.detect([FRAME, FRAME[:, :64].copy()])
    assert len(results) == 2 and all(len(r) == 1 for r in results)
    assert results[1][0].box == pytest.approx((0.25, 0.375, 0.75, 0.625), abs=0.01)


def test_missing_model_is_named(tmp_path):
    with pytest.raises(ModelError, match=r"nowhere.onnx.*does not exist"):
        OnnxDetector(tmp_path / "nowhere.onnx")


def test_a_file_that_is_not_onnx_is_named(tmp_path):
    bogus = tmp_path / "photo.onnx"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(ModelError, match=r"photo.onnx is not an ONNX model"):
        OnnxDetector(bogus)


def test_unexpected_outputs_are_named(tmp_path):
    model = onnx_models.unexpected_outputs_model(tmp_path / "classifier.onnx")
    with pytest.raises(ModelError, match=r"classifier.onnx: outputs .* fit no supported"):
        OnnxDetector(model)


def test_labels_count_mismatch_names_both_files(tmp_path):
    model = onnx_models.yolov8_model(tmp_path / "m.onnx")
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    with pytest.raises(ModelError, match=r"three.txt has 3 labels but model .*m.onnx predicts 2"):
        OnnxDetector(model, labels)


@pytest.mark.parametrize("names", ["{0: 'cat', 1: 'dog'}", '["cat", "dog"]', "cat\ndog"])
def test_labels_from_the_models_metadata(tmp_path, names):
    model = onnx_models.yolov8_model(tmp_path / "m.onnx", metadata={"names": names})
    detector = OnnxDetector(model)
    assert detector.labels == ["cat", "dog"] and "metadata" in detector.label_source
    assert [d.label for d in detector.detect([FRAME])[0]] == ["dog"]


def test_labels_file_beside_the_model_and_its_precedence(tmp_path, labels):
    model = onnx_models.yolov8_model(tmp_path / "m.onnx")
    (tmp_path / "m.names").write_text("bike\nbus\n")
    detector = OnnxDetector(model)
    assert detector.labels == ["bike", "bus"]
    assert detector.label_source == f"labels file {tmp_path / 'm.names'} (beside the model)"
    assert OnnxDetector(model, labels).labels == ["person", "car"]  # labels_path wins
    (tmp_path / "m.names").write_text("only-one\n")
    with pytest.raises(ModelError, match=r"m.names \(beside the model\) has 1 labels but model"):
        OnnxDetector(model)


def test_metadata_labels_of_the_wrong_length_are_an_error(tmp_path):
    model = onnx_models.yolov8_model(tmp_path / "m.onnx", metadata={"names": "{0: 'cat'}"})
    with pytest.raises(ModelError, match=r"metadata \('names'\) has 1 labels but model"):
        OnnxDetector(model)


def test_forced_layout_that_does_not_fit(tmp_path):
    model = onnx_models.ssd_model(tmp_path / "ssd.onnx")
    with pytest.raises(ModelError, match=r"fit no supported"):
        OnnxDetector(model, layout="yolov8")


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.8, 0.9, 0.5]), 0.45) == [1, 2]


def test_builtin_person_detector_finds_the_astronaut_and_not_the_coffee():
    assert len(ssd_anchors()) == 2254
    detector = BlazePersonDetector(BUILTIN_MODEL, confidence=0.7)
    [people] = detector.detect([sample_picture("astronaut")])
    assert [d.label for d in people] == ["person"]
    x0, _y0, x1, y1 = people[0].box
    assert x0 < 0.3 and x1 > 0.7 and y1 > 0.8  # she fills most of the picture
    for name in ("coffee", "rocket", "camera"):
        assert detector.detect([sample_picture(name)]) == [[]], name


def test_blazepose_spec_builds_the_builtin_and_falls_back_to_hog(tmp_path):
    detector = build_detector(DetectorSpec(builtin="blazepose", builtin_model=str(BUILTIN_MODEL),
                                           tiles="off"))
    assert detector.name == "blazepose-person" and detector.warning is None
    fallback = build_detector(DetectorSpec(builtin="blazepose", tiles="off",
                                           builtin_model=str(tmp_path / "missing.tflite")))
    assert isinstance(fallback, HogPersonDetector)
    assert "missing.tflite" in fallback.warning
    assert fallback.detect([sample_picture("coffee")]) == [[]]


def test_nvidia_without_gpu_falls_back_with_a_warning(tmp_path):
    detector = build_detector(DetectorSpec(backend="nvidia", model_path=str(
        onnx_models.yolov8_model(tmp_path / "m.onnx"))))
    assert "CPUExecutionProvider" in detector.runtime
    assert "running on the CPU" in detector.warning


def test_labels_without_model_is_an_error(tmp_path, labels):
    with pytest.raises(ModelError, match=r"labels_path is set but model_path is not"):
        build_detector(DetectorSpec(labels_path=str(labels)))


def test_plugin_that_is_missing_is_named():
    with pytest.raises(ModelError, match=r"no_such_module"):
        build_detector(DetectorSpec(plugin="no_such_module:Detector"))
