"""The built-in person detector: MediaPipe's BlazePose detector, run by LiteRT.

Why this model: no model hub is reachable at run time, and no package on the reachable
registries ships a COCO detector as ONNX under a licence we can use. MediaPipe's wheels (up
to 0.10.x, Apache-2.0) ship `pose_detection.tflite`, a real pretrained single-class person
detector; `scripts/setup.sh` extracts it from the wheel into `models/` (see `models.py`).
It is a TFLite model with sparse (DENSIFY) weights that the tflite→ONNX converters cannot
read, so it runs on LiteRT (`ai-edge-litert`), inside the worker like every backend.

The network predicts, per SSD anchor, a face box and four keypoints; keypoint 0 is the hip
centre and keypoint 1 a point on the circle enclosing the whole body. The person box is that
circle's bounding square, which is what MediaPipe itself crops for its pose landmarks.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, ModelError, letterbox, nms

INPUT = 224
# MediaPipe's pose_detection graph: SsdAnchorsCalculator options.
STRIDES = (8, 16, 32, 32, 32)
MIN_SCALE, MAX_SCALE = 0.1484375, 0.75


def ssd_anchors(size: int = INPUT, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Anchor centres (N, 2), as MediaPipe generates them with fixed_anchor_size=true.

    Consecutive layers with the same stride share one grid; each layer adds two anchors per
    cell (its aspect ratio 1.0 and the interpolated scale), so 28²·2 + 14²·2 + 7²·6 = 2254.
    """
    anchors: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = 2 * (last - layer)
        grid = -(-size // strides[layer])
        for y in range(grid):
            for x in range(grid):
                anchors.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell)
        layer = last
    return np.asarray(anchors, dtype=np.float32)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native code's writes to fd 2 for a moment (Python's own errors still raise)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class BlazePersonDetector(Detector):
    name = "blazepose-person"
    labels = ["person"]
    input_size = (INPUT, INPUT)

    def __init__(self, model_path: Path, confidence: float = 0.5, iou: float = 0.3):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(f"the built-in person detector needs LiteRT (ai-edge-litert): "
                             f"{exc}") from None
        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist (run scripts/setup.sh, "
                             "which extracts it from the mediapipe wheel)")
        try:
            with quiet_native_stderr():  # LiteRT prints an INFO line about XNNPACK on fd 2
                self._interpreter = Interpreter(model_path=str(model_path), num_threads=1)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path} is not a TFLite model LiteRT can load: {exc}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        shapes = sorted(tuple(o["shape"]) for o in outputs)
        if tuple(inputs[0]["shape"]) != (1, INPUT, INPUT, 3) or shapes != [
                (1, 2254, 1), (1, 2254, 12)]:
            raise ModelError(f"{model_path} is not MediaPipe's pose detector (inputs "
                             f"{inputs[0]['shape']}, outputs {shapes})")
        self._input = inputs[0]["index"]
        by_width = {int(o["shape"][2]): o["index"] for o in outputs}
        self._boxes, self._scores = by_width[12], by_width[1]
        self._anchors = ssd_anchors()
        self.confidence = confidence
        self.iou = iou
        self.runtime = "LiteRT (CPU, XNNPACK)"

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        h, w = frame.shape[:2]
        image, scale, pad_x, pad_y = letterbox(frame, INPUT, INPUT)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, rgb[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.nonzero(scores >= self.confidence)[0]
        if keep.size == 0:
            return []
        anchors = self._anchors[keep]
        hip = raw[keep, 4:6] / INPUT + anchors
        edge = raw[keep, 6:8] / INPUT + anchors
        radius = np.linalg.norm(edge - hip, axis=1)
        boxes = np.stack([hip[:, 0] - radius, hip[:, 1] - radius,
                          hip[:, 0] + radius, hip[:, 1] + radius], axis=1) * INPUT
        chosen = nms(boxes, scores[keep], self.iou)
        out = []
        for i in chosen:
            x0, y0, x1, y1 = boxes[i]
            box = (float(np.clip((x0 - pad_x) / scale / w, 0, 1)),
                   float(np.clip((y0 - pad_y) / scale / h, 0, 1)),
                   float(np.clip((x1 - pad_x) / scale / w, 0, 1)),
                   float(np.clip((y1 - pad_y) / scale / h, 0, 1)))
            out.append(Detection("person", float(scores[keep][i]), box))
        return out
