"""User-supplied ONNX detectors on ONNX Runtime: YOLOv5, YOLOv8-style and SSD-style outputs.

The layout is read from the model's outputs (or forced with `[inference] layout`):

- `yolov5`: one output (N, K, 5 + C): cx, cy, w, h (input pixels), objectness, C class scores.
- `yolov8`: one output (N, 4 + C, K) (or transposed): cx, cy, w, h, C class scores.
- `ssd`: boxes (N, K, 4) normalised x0, y0, x1, y1 plus scores (N, K, C); or the TensorFlow
  Object Detection API's post-processed set (`detection_boxes` y0, x0, y1, x1, `detection_scores`,
  `detection_classes`, optional `num_detections`), which is already suppressed.

Frames are letterboxed to the model's input size (or `input_size` for dynamic inputs),
RGB, NCHW or NHWC as the input's shape says, float inputs scaled to 0-1. A model with a
dynamic height and width may say in its metadata how it wants to be fed
(`streamwarden.input_size`, `streamwarden.input_fit = "aspect"`, as the built-in NanoDet-g
does): then each frame is scaled so its long side is that size and its short side is rounded
up to a multiple of `ASPECT_STEP`, so a 16:9 frame runs at 416x256 rather than letterboxed
into 416x416 (38 % fewer pixels convolved, the same scale). With `[inference] tiles = "auto"`
such a model is not tiled but *widened*: an elongated frame keeps its short side at the
model's size (736x416 for 16:9), the scale two square tiles would give, in one call with no
seams to merge (`long_side_for`), plus one call on the whole frame at the model's size for
the large objects (detectors/scales.py). A model whose batch
dimension is dynamic gets the whole batch in one call; a fixed batch of 1 is called per frame.
Every mismatch (not ONNX, outputs that fit no layout, a labels file whose length does not match
the class count) is a `ModelError` that names the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, ModelError, letterbox, nms, unletterbox
from streamwarden.inference.detectors.labels import resolve_labels
from streamwarden.inference.detectors.scales import WHOLE_FRACTION, combine_scales

LAYOUTS = ("auto", "yolov5", "yolov8", "ssd")
NVIDIA_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
ASPECT_STEP = 32  # the coarsest stride of common detectors: their input sides divide by it
WIDEN_MIN_ASPECT = 1.5  # `widen` applies to frames this elongated (16:9 yes, 4:3 no), as tiles
WIDEN_MAX = 3  # long side at most this many times the model's size
# The input a frame is scaled to: the model's size; widened (`long_side_for`); or the coarse
# whole-frame pass of the two-scale look (`whole_long_side`)
Scale = Literal["model", "wide", "whole"]
META_SIZE, META_FIT = "streamwarden.input_size", "streamwarden.input_fit"


def aspect_input(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) of the input for a width x height frame: the long side `long_side`, the short
    one scaled alike and rounded up to a multiple of ASPECT_STEP (never above `long_side`)."""
    scale = long_side / max(width, height)

    def side(n: int) -> int:
        return min(long_side, max(ASPECT_STEP, -(-round(n * scale) // ASPECT_STEP) * ASPECT_STEP))

    return side(width), side(height)


def provider_warning(requested: list[str], used: list[str]) -> str | None:
    """What `/inference` should say when ONNX Runtime dropped a GPU provider it listed as
    available. It lists TensorRT whenever its GPU build is installed, then falls back (with an
    error in the log) when TensorRT's own libraries (libnvinfer) are missing: seen on an H200
    machine with CUDA but no TensorRT."""
    dropped = [p for p in requested if p != "CPUExecutionProvider" and p not in used]
    if not dropped:
        return None
    running = next((p for p in used if p != "CPUExecutionProvider"), "CPUExecutionProvider")
    return (f"backend 'nvidia': {', '.join(dropped)} listed but could not start (its libraries "
            f"are missing?); running on {running}")


class OnnxDetector(Detector):
    def __init__(self, model_path: Path, labels_path: Path | None = None, *,
                 input_size: int = 640, confidence: float = 0.5, iou: float = 0.45,
                 layout: str = "auto", nvidia: bool = False, threads: int = 1):
        import onnxruntime as ort

        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist")
        providers = ["CPUExecutionProvider"]
        if nvidia:
            available = [p for p in NVIDIA_PROVIDERS if p in ort.get_available_providers()]
            if available:
                providers = [*available, "CPUExecutionProvider"]
            else:
                self.warning = ("backend 'nvidia': ONNX Runtime has no CUDA/TensorRT execution "
                                "provider here; running on the CPU")
        options = ort.SessionOptions()
        # `[inference] threads` are calls side by side, each on one thread: splitting one call
        # over two cores cost 10-20 % more CPU a call than two calls at once (measured at
        # 640x360, fp32 71 vs 65 ms, INT8 39 vs 33). Threads that wait sleep, never spin.
        options.intra_op_num_threads = 1
        self.parallel_calls = max(1, threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises several private types for bad files
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc)
            raise ModelError(f"{model_path} is not an ONNX model ONNX Runtime can load: "
                             f"{first}") from None
        self.name = model_path.stem
        self.runtime = "onnxruntime " + ",".join(self._session.get_providers())
        if nvidia and providers[0] != "CPUExecutionProvider":
            self.warning = provider_warning(providers, self._session.get_providers())
        self.confidence, self.iou = confidence, iou
        self._input = self._session.get_inputs()[0]
        metadata = dict(self._session.get_modelmeta().custom_metadata_map or {})
        self._parse_input(model_path, input_size, metadata)
        self._outputs = self._session.get_outputs()
        self.layout, self.classes = self._parse_outputs(model_path, layout)
        labels = resolve_labels(model_path, labels_path, metadata, self.classes)
        self.labels, self.label_source = labels.names, labels.source

    # ---- model inspection ------------------------------------------------------------------

    @property
    def input_meta(self):
        """ONNX Runtime's description of the image input (name, shape, type)."""
        return self._input

    @property
    def outputs_meta(self) -> list:
        return list(self._outputs)

    def _parse_input(self, model_path: Path, input_size: int, metadata: dict[str, str]) -> None:
        shape = list(self._input.shape)
        if len(shape) != 4:
            raise ModelError(f"{model_path}: expected one image input of rank 4, got {shape}")
        self._nchw = shape[1] == 3 or (shape[3] != 3)
        h, w = (shape[2], shape[3]) if self._nchw else (shape[1], shape[2])
        dynamic = not all(isinstance(v, int) and v > 0 for v in (h, w))
        self.input_fit = "aspect" if dynamic and metadata.get(META_FIT) == "aspect" else "square"
        self.widen = False  # set by build_detector for tiles "auto" (see long_side_for)
        if dynamic and metadata.get(META_SIZE, "").isdigit():
            input_size = int(metadata[META_SIZE])  # the model's own, as its maker measured it
        self._height = h if isinstance(h, int) and h > 0 else input_size
        self._width = w if isinstance(w, int) and w > 0 else input_size
        self.input_size = (self._width, self._height)
        self.input_layout = "NCHW" if self._nchw else "NHWC"
        self.input_dynamic = dynamic
        self._batch_dynamic = not (isinstance(shape[0], int) and shape[0] > 0)
        self._float = "float" in self._input.type
        self.input_type = self._input.type  # e.g. tensor(float)

    def _parse_outputs(self, model_path: Path, layout: str) -> tuple[str, int | None]:
        shapes = {o.name: list(o.shape) for o in self._outputs}
        names = {n.lower(): n for n in shapes}
        if layout in ("auto", "ssd") and "detection_boxes" in names:
            self._ssd = {k: names[k] for k in ("detection_boxes", "detection_scores",
                                               "detection_classes", "num_detections")
                         if k in names}
            if "detection_scores" not in self._ssd or "detection_classes" not in self._ssd:
                raise ModelError(f"{model_path}: detection_boxes without detection_scores and "
                                 "detection_classes")
            return "ssd-postprocessed", None
        if len(shapes) == 1 and layout in ("auto", "yolov5", "yolov8"):
            shape = next(iter(shapes.values()))
            if len(shape) == 3:
                a, b = shape[1], shape[2]
                fixed_a, fixed_b = isinstance(a, int), isinstance(b, int)
                if layout == "yolov5" or (layout == "auto" and fixed_b and (
                        not fixed_a or a > b) and b >= 6):
                    return "yolov5", int(b) - 5
                if fixed_a and a >= 5:
                    return "yolov8", int(a) - 4
        if len(shapes) == 2 and layout in ("auto", "ssd"):
            by_last = sorted(shapes.items(), key=lambda kv: kv[1][-1] == 4, reverse=True)
            (box_name, box_shape), (score_name, score_shape) = by_last
            if (len(box_shape) == 3 and box_shape[-1] == 4 and len(score_shape) == 3
                    and isinstance(score_shape[-1], int)):
                self._ssd = {"boxes": box_name, "scores": score_name}
                return "ssd", int(score_shape[-1])
        raise ModelError(f"{model_path}: outputs {shapes} fit no supported detector layout "
                         "(YOLOv5 (N,K,5+C), YOLOv8 (N,4+C,K), SSD boxes (N,K,4) + scores "
                         "(N,K,C), or TF detection_boxes/scores/classes)")

    # ---- inference -------------------------------------------------------------------------

    def _input_for(self, frame: np.ndarray, scale: Scale) -> tuple[int, int]:
        if self.input_fit != "aspect":
            return self._width, self._height
        height, width = frame.shape[:2]
        long_side = (self.whole_long_side() if scale == "whole"
                     else self.long_side_for(width, height, scale == "wide"))
        return aspect_input(width, height, long_side)

    def whole_long_side(self) -> int:
        """The whole-frame pass's long side when a frame is looked at twice: it answers only
        for objects a quarter of the frame tall or more (detectors/scales.py), which the
        model still finds at `WHOLE_FRACTION` of its size (416 -> 320)."""
        size = max(self._width, self._height)
        return max(ASPECT_STEP, round(size * WHOLE_FRACTION / ASPECT_STEP) * ASPECT_STEP)

    def long_side_for(self, width: int, height: int, widen: bool) -> int:
        """The input's long side for a frame: the model's size, or widened, for an elongated
        frame, as long as keeps its short side at the model's size, i.e. the scale two
        square tiles would give it (736x416 for 16:9), in one call. Never wider than the
        frame itself (a 640x360 sub-stream runs at 640x384, not scaled up to 736x416: no
        detail is gained, 20 % more pixels are convolved, and scaled-up frames cost
        precision on bench/detect_quality.py)."""
        size = max(self._width, self._height)
        long_side, short_side = max(width, height), min(width, height)
        if not widen or long_side < WIDEN_MIN_ASPECT * short_side:
            return size
        wide = round(size * long_side / short_side) // ASPECT_STEP * ASPECT_STEP  # down: the
        # short side then rounds up to the model's size again
        return max(size, min(wide, WIDEN_MAX * size, long_side // ASPECT_STEP * ASPECT_STEP))

    def _prepare(self, frame: np.ndarray,
                 scale: Scale) -> tuple[np.ndarray, tuple[float, int, int]]:
        import cv2

        image, factor, pad_x, pad_y = letterbox(frame, *self._input_for(frame, scale))
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        # Reorder the bytes first, then convert in place: transposing the float copy moved
        # 4x the bytes (640x384: 1.2 ms a frame, now 0.9; the same values)
        ordered: np.ndarray = np.ascontiguousarray(rgb.transpose(2, 0, 1)) if self._nchw else rgb
        if not self._float:
            return ordered, (factor, pad_x, pad_y)
        tensor = ordered.astype(np.float32)
        tensor /= 255.0
        return tensor, (factor, pad_x, pad_y)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """With `widen` (tiles "auto" on a frame-aspect model) an elongated frame is looked at
        twice, widened and whole (see detectors/scales.py); otherwise once."""
        if not self.widen:
            return self._run(frames, "model")
        found = self._run(frames, "wide")
        twice = [i for i, frame in enumerate(frames)
                 if self._input_for(frame, "wide") != self._input_for(frame, "model")]
        whole = self._run([frames[i] for i in twice], "whole") if twice else []
        for i, coarse in zip(twice, whole, strict=True):
            found[i] = combine_scales(found[i], coarse, self.iou)
        return found

    def _run(self, frames: list[np.ndarray], scale: Scale) -> list[list[Detection]]:
        prepared = [self._prepare(f, scale) for f in frames]
        same_shape = len({p[0].shape for p in prepared}) == 1
        if self._batch_dynamic and len(frames) > 1 and same_shape:
            batches = [[p[0] for p in prepared]]
        else:
            batches = [[p[0]] for p in prepared]
        outputs_per_frame: list[dict[str, np.ndarray]] = []
        for batch in batches:
            result = self._session.run(None, {self._input.name: np.stack(batch)})
            named = {o.name: r for o, r in zip(self._outputs, result, strict=True)}
            for i in range(len(batch)):
                outputs_per_frame.append({k: v[i] for k, v in named.items()})
        return [self._decode(out, frame, geometry, scale)
                for out, frame, (_, geometry) in zip(outputs_per_frame, frames, prepared,
                                                     strict=True)]

    def _decode(self, out: dict[str, np.ndarray], frame: np.ndarray,
                geometry: tuple[float, int, int], scale: Scale) -> list[Detection]:
        h, w = frame.shape[:2]
        input_w, input_h = self._input_for(frame, scale)
        if self.layout in ("yolov5", "yolov8"):
            pred = next(iter(out.values())).astype(np.float32)
            if self.layout == "yolov8":
                pred = pred.T  # (K, 4 + C)
                scores_all = pred[:, 4:]
            else:
                scores_all = pred[:, 5:] * pred[:, 4:5]
            classes = scores_all.argmax(axis=1)
            scores = scores_all[np.arange(len(classes)), classes]
            keep = scores >= self.confidence
            cx, cy, bw, bh = (pred[keep, i] for i in range(4))
            boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
            boxes = unletterbox(boxes, *geometry, w, h)
            return self._suppress(boxes, scores[keep], classes[keep])
        if self.layout == "ssd":
            boxes = out[self._ssd["boxes"]].astype(np.float32)
            scores_all = out[self._ssd["scores"]].astype(np.float32)
            classes = scores_all.argmax(axis=1)
            scores = scores_all[np.arange(len(classes)), classes]
            keep = scores >= self.confidence
            boxes = self._from_input_fraction(boxes[keep], (input_w, input_h), geometry, w, h)
            return self._suppress(boxes, scores[keep], classes[keep])
        # TF OD API: already suppressed, boxes y0, x0, y1, x1 normalised to the input
        names = self._ssd
        count_name = names.get("num_detections")
        count = (int(np.ravel(out[count_name])[0]) if count_name
                 else len(out[names["detection_scores"]]))
        scores = out[names["detection_scores"]][:count].astype(np.float32)
        classes = out[names["detection_classes"]][:count].astype(np.int64)
        boxes = out[names["detection_boxes"]][:count][:, [1, 0, 3, 2]].astype(np.float32)
        keep = scores >= self.confidence
        boxes = self._from_input_fraction(boxes[keep], (input_w, input_h), geometry, w, h)
        return [self._make(b, s, c) for b, s, c in zip(boxes, scores[keep], classes[keep],
                                                      strict=True)]

    @staticmethod
    def _from_input_fraction(boxes: np.ndarray, size: tuple[int, int],
                             geometry: tuple[float, int, int], w: int, h: int) -> np.ndarray:
        scaled = boxes * np.array([*size, *size], dtype=np.float32)
        return unletterbox(scaled, *geometry, w, h)

    def _suppress(self, boxes: np.ndarray, scores: np.ndarray,
                  classes: np.ndarray) -> list[Detection]:
        out: list[Detection] = []
        for cls in np.unique(classes):
            idx = np.nonzero(classes == cls)[0]
            for i in nms(boxes[idx], scores[idx], self.iou):
                j = idx[i]
                out.append(self._make(boxes[j], scores[j], classes[j]))
        out.sort(key=lambda d: -d.confidence)
        return out

    def _make(self, box: np.ndarray, score: float, cls: int) -> Detection:
        cls = int(cls)
        label = self.labels[cls] if 0 <= cls < len(self.labels) else f"class_{cls}"
        return Detection(label, float(score), tuple(float(v) for v in box))  # type: ignore[arg-type]
