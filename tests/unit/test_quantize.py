"""NanoDet-g in INT8: the set-up's quantisation step (a loadable QOperator model, calibrated on
photographs, its pre/post-processing left in float; fp32 kept, with a sentence, when it fails)
and how `[inference] precision` and the backend pick the file."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from streamwarden.config.model import InferenceSection
from streamwarden.inference.convert.quantize import (
    QUANTIZED_FROM,
    QUANTIZER,
    QUANTIZER_VERSION,
    float_nodes,
    quantize_model,
)
from streamwarden.inference.detectors.factory import DetectorSpec, build_model
from streamwarden.inference.models import NANODET_MODEL, install_nanodet_int8, int8_path
from tests.unit.test_nanodet import at_height, photo, street


@pytest.fixture(scope="module")
def fp32():
    for path in (NANODET_MODEL, int8_path(NANODET_MODEL)):
        if not path.is_file():
            pytest.fail(f"{path} is missing: run scripts/setup.sh (python -m "
                        "streamwarden.inference.models converts and quantises NanoDet-g)")
    return build_model(DetectorSpec(builtin="nanodet", builtin_model=str(NANODET_MODEL),
                                    precision="fp32"))


@pytest.fixture(scope="module")
def int8():
    return build_model(DetectorSpec(builtin="nanodet", builtin_model=str(NANODET_MODEL),
                                    precision="int8"))


def test_int8_runs_the_int8_file_under_the_models_name(int8, fp32):
    assert int8.runtime.endswith(" int8") and fp32.runtime.endswith(" fp32")
    assert int8.name == fp32.name == "nanodet-g-416-coco" and int8.warning is None
    assert int8.input_fit == "aspect" and int8.labels == fp32.labels


@pytest.mark.parametrize("frame", ["street", "astronaut", "moto+cat"])
def test_int8_finds_what_fp32_finds_where_fp32_finds_it(int8, fp32, frame):
    frame = {"street": street(), "astronaut": photo("astronaut"),
             "moto+cat": np.concatenate([at_height(photo(n), 400)
                                         for n in ("stereo_motorcycle", "chelsea")], axis=1)}[frame]
    [ours], [theirs] = int8.detect([frame]), fp32.detect([frame])
    assert sorted(d.label for d in ours) == sorted(d.label for d in theirs) != []
    for d in ours:
        twin = next(t for t in theirs if t.label == d.label)
        assert abs(d.confidence - twin.confidence) < 0.05, (d, twin)
        assert np.abs(np.subtract(d.box, twin.box)).max() < 0.02, (d, twin)  # of the frame


def test_int8_places_boxes_right_of_416_px_on_the_widened_input(int8, fp32):
    """`tiles = "auto"` runs a 16:9 frame widened to 736x416. A file quantised with the
    anchor grid in uint8 (calibrated at 416 px wide) moved every box whose centre lay right of
    416 px onto x = 0.56: the astronaut on the right of this frame came out twice."""
    frame = np.full((720, 1280, 3), 114, np.uint8)
    frame[60:660, 900:1200] = at_height(photo("astronaut"), 600)[:, :300]
    for detector in (int8, fp32):
        detector.widen = True
    try:
        [ours], [theirs] = int8.detect([frame]), fp32.detect([frame])
    finally:
        for detector in (int8, fp32):
            detector.widen = False
    assert [d.label for d in ours] == [d.label for d in theirs] == ["person"], (ours, theirs)
    assert np.abs(np.subtract(ours[0].box, theirs[0].box)).max() < 0.02, (ours, theirs)
    assert ours[0].box[0] > 0.68  # where she stands, not at x = 0.56


def test_int8_finds_nothing_in_textures(int8):
    assert int8.detect([photo(name) for name in ("brick", "grass", "gravel")]) == [[], [], []]


def test_normalisation_and_the_heads_stay_float():
    model = onnx.load(str(NANODET_MODEL))
    kept = set(float_nodes(model))
    by_name = {n.name: n for n in model.graph.node}
    ops = {by_name[name].op_type for name in kept}
    assert "Conv" not in ops and {"Gather", "Sigmoid", "Softmax", "Split", "MatMul"} <= ops
    assert all(n.name in kept for n in model.graph.node if n.output[0] in ("boxes", "scores"))
    assert all(n.name in kept for n in model.graph.node if n.output[0].startswith("pre/"))
    grid = [n for n in model.graph.node if n.op_type == "Range"]
    assert grid and all(n.name in kept for n in grid), "the anchor grid stays float"
    assert {n.name for n in model.graph.node if "centres" in n.output[0]} <= kept


def test_quantising_writes_a_loadable_int8_model(tmp_path):
    target = tmp_path / "q.onnx"
    quantize_model(NANODET_MODEL, target, frames=[photo("astronaut")])
    model = onnx.load(str(target))
    ops = {n.op_type for n in model.graph.node}
    assert {"QLinearConv", "QuantizeLinear"} <= ops and "Conv" not in ops
    props = {p.key: p.value for p in model.metadata_props}
    assert props[QUANTIZED_FROM] == onnx.load(str(NANODET_MODEL)).producer_version
    assert props[QUANTIZER] == QUANTIZER_VERSION
    assert props["streamwarden.input_fit"] == "aspect"
    detector = build_model(DetectorSpec(builtin="nanodet", builtin_model=str(NANODET_MODEL),
                                        precision="fp32"))
    detector._session = __import__("onnxruntime").InferenceSession(
        str(target), providers=["CPUExecutionProvider"])
    [found] = detector.detect([photo("astronaut")])
    assert [d.label for d in found] == ["person"]


def test_a_failed_quantisation_keeps_fp32_with_a_sentence(tmp_path, capsys):
    broken = tmp_path / "nanodet.onnx"
    broken.write_bytes(b"not a model")
    assert install_nanodet_int8(broken) is None
    err = capsys.readouterr().err
    assert "quantising nanodet.onnx to INT8 failed" in err
    assert "the CPU backend will run the fp32 model nanodet.onnx" in err
    assert not int8_path(broken).exists() and not list(tmp_path.glob(".*partial"))


def test_an_int8_file_from_the_older_recipe_runs_fp32_with_a_warning(tmp_path):
    """A file quantised before the anchor grid stayed float (no `streamwarden.quantizer`)
    misplaces boxes on the widened input: the worker runs fp32 until set-up re-quantises."""
    lone = tmp_path / "nanodet-g-416-coco.onnx"
    os.symlink(NANODET_MODEL, lone)
    old = onnx.load(str(int8_path(NANODET_MODEL)))
    kept = [p for p in old.metadata_props if p.key != QUANTIZER]
    del old.metadata_props[:]
    old.metadata_props.extend(kept)
    onnx.save(old, str(int8_path(lone)))
    detector = build_model(DetectorSpec(builtin="nanodet", builtin_model=str(lone),
                                        precision="int8"))
    assert detector.runtime.endswith(" fp32")
    assert "is from an older quantisation" in detector.warning
    assert "python -m streamwarden.inference.models" in detector.warning


def test_a_missing_int8_file_runs_fp32_with_a_warning(tmp_path):
    lone = tmp_path / "nanodet-g-416-coco.onnx"
    os.symlink(NANODET_MODEL, lone)
    detector = build_model(DetectorSpec(builtin="nanodet", builtin_model=str(lone),
                                        precision="int8"))
    assert detector.runtime.endswith(" fp32")
    assert "nanodet-g-416-coco-int8.onnx is missing" in detector.warning


def test_int8_is_the_cpu_default_fp32_one_line_away_and_the_nvidia_backend_runs_fp32():
    # the default since event_score keeps INT8's clock-overlay boxes out of events
    assert InferenceSection().precision == "int8"
    spec = DetectorSpec.from_config(InferenceSection())
    assert spec.precision == "int8" and build_model(spec).runtime.endswith(" int8")
    fp32 = DetectorSpec.from_config(InferenceSection(precision="fp32"))
    assert build_model(fp32).runtime.endswith(" fp32")
    nvidia = build_model(DetectorSpec.from_config(InferenceSection(backend="nvidia",
                                                                  precision="int8")))
    assert nvidia.runtime.endswith(" fp32")
