"""`streamwarden check-model FILE`: files that are not models are named for what they are,
models that load are described and run on the astronaut, exit codes as the rest of the CLI."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from streamwarden.cli import main
from streamwarden.inference.models import BUILTIN_MODEL, NANODET_MODEL
from tests import onnx_models


def check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check-model", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_text_file_is_not_a_model_and_says_so_without_a_traceback(tmp_path):
    text = tmp_path / "yolox_s.onnx"
    text.write_text("<Error><Code>AccessDenied</Code></Error>\n")
    result = subprocess.run([sys.executable, "-m", "streamwarden", "check-model", str(text)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "yolox_s.onnx is a text file, not a model" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_truncated_onnx_file(tmp_path, capsys):
    whole = onnx_models.yolov8_model(tmp_path / "whole.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: len(whole) // 2])
    code, _, err = check(capsys, cut)
    assert code == 1
    assert "cut.onnx is not an ONNX model ONNX Runtime can load" in err


def test_a_png_renamed_onnx(tmp_path, capsys):
    png = tmp_path / "model.onnx"
    _, data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    png.write_bytes(data.tobytes())
    code, _, err = check(capsys, png)
    assert code == 1 and "model.onnx is a PNG image, not a model" in err


def test_an_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.onnx"
    empty.touch()
    code, _, err = check(capsys, empty)
    assert code == 1 and "empty.onnx is empty" in err


def test_a_valid_model_with_an_unsupported_output_layout(tmp_path, capsys):
    model = onnx_models.unexpected_outputs_model(tmp_path / "classifier.onnx")
    code, _, err = check(capsys, model)
    assert code == 1
    assert "classifier.onnx: outputs {'logits': [1, 7]} fit no supported detector layout" in err


def test_a_yolov8_export_is_described_and_run(tmp_path, capsys):
    model = onnx_models.yolov8_model(tmp_path / "tiny.onnx",
                                     metadata={"names": "{0: 'cat', 1: 'dog'}"})
    code, out, err = check(capsys, model)
    assert code == 0, err
    assert "ONNX model, loads (onnxruntime CPUExecutionProvider)" in out
    assert "input: images [1, 3, 64, 64] tensor(float), NCHW, 64x64" in out
    assert "layout: yolov8: one output (N, 4 + C, K)" in out
    assert "classes (the model's metadata ('names')): cat, dog" in out
    # the fixed answer: (16, 24)-(48, 40) of the 64x64 input, x8 on the 512x512 picture
    assert "    dog            0.90  [128, 192, 384, 320]" in out
    assert "latency:" in out and out.rstrip().endswith("OK: usable")


def test_labels_option_and_a_mismatch(tmp_path, capsys):
    model = onnx_models.yolov8_model(tmp_path / "tiny.onnx")
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    code, _, err = check(capsys, model, "--labels", labels)
    assert code == 1 and "three.txt has 3 labels but model" in err
    labels.write_text("person\ncar\n")
    code, out, _ = check(capsys, model, "--labels", labels)
    assert code == 0 and f"classes (labels file {labels}): person, car" in out


def test_the_built_in_nanodet_finds_the_astronaut(capsys):
    code, out, err = check(capsys, NANODET_MODEL)
    assert code == 0, err
    assert "layout: ssd:" in out and "80 COCO classes assumed" in out
    assert 'tiles = "auto": a 768x432 frame is 2 call(s) of this model, widened (736x416) and ' \
        'whole (320x192' in out
    found = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert [f[0] for f in found] == ["person"], out


def test_blazepose_tflite_is_recognised(capsys):
    code, out, err = check(capsys, BUILTIN_MODEL)
    assert code == 0, err
    assert "TFLite model" in out and 'usable as the built-in model = "blazepose"' in out
    assert "    person" in out


def test_a_picture_of_ones_own(tmp_path, capsys):
    picture = tmp_path / "empty-street.png"
    cv2.imwrite(str(picture), np.full((360, 640, 3), 128, np.uint8))
    code, out, _ = check(capsys, NANODET_MODEL, "--image", picture)
    assert code == 0 and f"test picture: {picture}" in out
    assert "note: nothing found in the test picture" in out


@pytest.mark.parametrize("args", [
    ["/nonexistent/model.onnx"],
    [str(NANODET_MODEL), "--confidence", "2"],
    [str(NANODET_MODEL), "--image", "/nonexistent.png"],
])
def test_bad_usage_is_exit_code_2(capsys, args):
    code, out, err = check(capsys, *args)
    assert code == 2 and out == "" and "check-model" in err


def test_missing_argument_is_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check-model"])
    assert exc.value.code == 2
