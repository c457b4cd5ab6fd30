"""`streamwarden check-model FILE`: can the worker use this file, and what does it see?

Bringing one's own model is a file path in the config; what can go wrong with it (not a model
at all, a truncated download, an export whose outputs fit no layout, labels that do not match)
should show up here, at the operator's terminal, rather than as a worker that refuses to
start. The check builds the model exactly as the worker would (`OnnxDetector`, the same
layout and labels rules), runs it on a test picture (scikit-image's astronaut: one person, or
`--image`), and prints the input it expects, the output layout it was read as, its classes
and where their names came from, what it found and how long a call took.

Exit codes as the rest of the CLI: 0 usable, 1 unusable (the reason is printed), 2 bad usage.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, ModelError

#: magic numbers of files people mistake for models, and what to say about each
NOT_MODELS = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\x7fELF", "a program (ELF)"), (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive (a PyTorch .pt checkpoint, a .zip, ...)"),
    (b"<!DOCTYPE", "an HTML page"), (b"<html", "an HTML page"),
]
TFLITE_MAGIC = b"TFL3"  # FlatBuffers file identifier, bytes 4-8
LAYOUT_TEXT = {
    "yolov5": "yolov5: one output (N, K, 5 + C): cx, cy, w, h (input pixels), objectness, "
              "class scores",
    "yolov8": "yolov8: one output (N, 4 + C, K): cx, cy, w, h (input pixels), class scores",
    "ssd": "ssd: boxes (N, K, 4) x0, y0, x1, y1 as fractions of the input + scores (N, K, C)",
    "ssd-postprocessed": "TF Object Detection API: detection_boxes (y0, x0, y1, x1), "
                         "detection_scores, detection_classes[, num_detections]; already "
                         "suppressed",
}
TILED_FRAME = (768, 432)  # what `[inference] frame_width = 768` hands over from a 16:9 camera


class UnusableModelError(Exception):
    """The file cannot be used as a detector; the message says why (exit code 1)."""


@dataclass
class Report:
    path: Path
    kind: str  # "ONNX" or "TFLite"
    runtime: str
    lines: list[str] = field(default_factory=list)  # what was learnt, in order
    found: list[Detection] = field(default_factory=list)
    picture: str = ""
    picture_size: tuple[int, int] = (0, 0)
    latency_ms: tuple[float, float] = (0.0, 0.0)  # first call, median of the next ones
    notes: list[str] = field(default_factory=list)


def sniff(path: Path) -> str:
    """"onnx" or "tflite" by the file's first bytes, or UnusableModelError naming what it is."""
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise UnusableModelError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise UnusableModelError(f"{path} is empty, not a model")
    if head[4:8] == TFLITE_MAGIC:
        return "tflite"
    for magic, what in NOT_MODELS:
        if head.lstrip().startswith(magic):
            raise UnusableModelError(f"{path} is {what}, not a model")
    if _looks_like_text(head):
        raise UnusableModelError(f"{path} is a text file, not a model (an ONNX model is binary "
                            "protobuf; a download that saved an error page looks like this)")
    return "onnx"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def load_picture(image: Path | None) -> tuple[np.ndarray, str]:
    """The picture to run the model on (BGR) and how to name it."""
    import cv2

    if image is not None:
        picture = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if picture is None:
            raise ValueError(f"--image {image}: not a picture OpenCV can read")
        return picture, str(image)
    import skimage.data

    return (cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR),
            "scikit-image's astronaut (512x512, one person)")


def check_model(path: Path, *, labels: Path | None = None, layout: str = "auto",
                input_size: int = 640, confidence: float | None = None,
                image: Path | None = None, runs: int = 5) -> Report:
    """Load, describe and run the model; UnusableModelError if the worker could not use it."""
    kind = sniff(path)
    picture, name = load_picture(image)
    if kind == "tflite":
        detector, report = _tflite(path, confidence)
    else:
        detector, report = _onnx(path, labels, layout, input_size, confidence)
    report.picture, report.picture_size = name, (picture.shape[1], picture.shape[0])
    _run(detector, picture, runs, report)
    return report


def _onnx(path: Path, labels: Path | None, layout: str, input_size: int,
          confidence: float | None) -> tuple[Detector, Report]:
    from streamwarden.inference.detectors.factory import ONNX_CONFIDENCE
    from streamwarden.inference.detectors.onnx import OnnxDetector, aspect_input
    from streamwarden.inference.detectors.tiling import grid_for

    try:
        detector = OnnxDetector(path, labels, input_size=input_size, layout=layout,
                                confidence=confidence or ONNX_CONFIDENCE)
    except ModelError as exc:
        raise UnusableModelError(str(exc)) from None
    report = Report(path, "ONNX", detector.runtime)
    tensor = detector.input_meta
    width, height = detector.input_size or (input_size, input_size)
    dynamic = " (dynamic: --input-size / [inference] input_size)" if detector.input_dynamic \
        else ""
    if getattr(detector, "input_fit", "square") == "aspect":  # the model's metadata says so
        dynamic = (f" (dynamic, set by the model: long side {max(width, height)}, short side "
                   "the frame's aspect rounded up to 32)")
    report.lines.append(f"input: {tensor.name} {list(tensor.shape)} {tensor.type}, "
                        f"{detector.input_layout}, {width}x{height}{dynamic}; frames are "
                        "letterboxed, RGB" + (", 0-1" if "float" in tensor.type else ""))
    shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in detector.outputs_meta)
    report.lines.append(f"outputs: {shapes}")
    report.lines.append(f"layout: {LAYOUT_TEXT[detector.layout]}")
    report.lines.append(_classes_line(detector.labels, detector.label_source))
    report.lines.append(f"confidence: {detector.confidence}")
    if detector.input_fit == "aspect":
        wide = aspect_input(*TILED_FRAME, detector.long_side_for(*TILED_FRAME, True))
        whole = aspect_input(*TILED_FRAME, detector.whole_long_side())
        report.lines.append(f'tiles = "auto": a {TILED_FRAME[0]}x{TILED_FRAME[1]} frame is '
                            f"2 call(s) of this model, widened ({wide[0]}x{wide[1]}) and "
                            f"whole ({whole[0]}x{whole[1]}, for objects a quarter of the "
                            "frame tall or more)")
        return detector, report
    cols, rows = grid_for("auto", *TILED_FRAME, detector.input_size)
    report.lines.append(f'tiles = "auto": a {TILED_FRAME[0]}x{TILED_FRAME[1]} frame is '
                        f"{cols * rows} call(s) of this model")
    return detector, report


def _tflite(path: Path, confidence: float | None) -> tuple[Detector, Report]:
    """TFLite files load for the report; only BlazePose's detector is run as a TFLite model."""
    from streamwarden.inference.detectors.blazepose import BlazePersonDetector
    from streamwarden.inference.detectors.factory import BUILTIN_CONFIDENCE

    details = _tflite_details(path)
    try:
        detector = BlazePersonDetector(path, confidence or BUILTIN_CONFIDENCE)
    except ModelError:
        raise UnusableModelError(
            f"{path} is a TFLite model ({details}); streamwarden runs user models as ONNX "
            "(model_path): convert it, e.g. python -m tf2onnx.convert --tflite "
            f"{path.name} --output {path.stem}.onnx, then check the .onnx file") from None
    report = Report(path, "TFLite", detector.runtime)
    report.lines.append(f"model: MediaPipe's BlazePose person detector ({details})")
    report.lines.append('usable as the built-in model = "blazepose" (not as model_path)')
    report.lines.append(_classes_line(detector.labels, "built in"))
    report.lines.append(f"confidence: {detector.confidence}")
    return detector, report


def _tflite_details(path: Path) -> str:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UnusableModelError(f"{path} is a TFLite model and LiteRT (ai-edge-litert) is not "
                            "installed to read it") from None
    from streamwarden.inference.detectors.blazepose import quiet_native_stderr

    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_path=str(path))
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise UnusableModelError(f"{path} looks like TFLite but LiteRT cannot load it: "
                            f"{str(exc).splitlines()[0][:300]}") from None
    return f"inputs {_tensors(inputs)}; outputs {_tensors(outputs)}"


def _tensors(details: list[dict]) -> str:
    return ", ".join(f"{[int(v) for v in d['shape']]} {np.dtype(d['dtype']).name}"
                     for d in details)


def _classes_line(labels: list[str], source: str) -> str:
    shown = ", ".join(labels[:8]) + (f", ... ({len(labels)} in all)" if len(labels) > 8 else "")
    return f"classes ({source}): {shown}"


def _run(detector: Detector, picture: np.ndarray, runs: int, report: Report) -> None:
    times = []
    try:
        for _ in range(1 + max(1, runs)):
            started = time.perf_counter()
            [found] = detector.detect([picture])
            times.append((time.perf_counter() - started) * 1000)
    except Exception as exc:  # a runtime error inside the model is the model's problem
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc)
        raise UnusableModelError(f"{report.path} loads but fails on a picture: {first}") from None
    report.found = found
    report.latency_ms = (times[0], statistics.median(times[1:]))
    if not found:
        report.notes.append("nothing found in the test picture: if the model knows people, "
                            "check its layout (--layout) and its input normalisation")


def format_report(report: Report) -> str:
    w, h = report.picture_size
    out = [f"{report.path}: {report.kind} model, loads ({report.runtime})"]
    out += [f"  {line}" for line in report.lines]
    out.append(f"  test picture: {report.picture}")
    for det in report.found[:20]:
        x0, y0, x1, y1 = det.box
        out.append(f"    {det.label:<14} {det.confidence:.2f}  "
                   f"[{x0 * w:.0f}, {y0 * h:.0f}, {x1 * w:.0f}, {y1 * h:.0f}]")
    if len(report.found) > 20:
        out.append(f"    ... {len(report.found) - 20} more")
    first, median = report.latency_ms
    out.append(f"  latency: {median:.1f} ms a call (median; first call {first:.1f} ms), "
               "one CPU thread")
    out += [f"  note: {note}" for note in report.notes]
    out.append("  OK: usable")
    return "\n".join(out)
