"""The detector interface every backend implements, and the error that names a bad model.

Detectors run only inside the inference worker process: a runtime that crashes or leaks there
costs a worker restart, never a recording. `detect` takes a batch of BGR frames (numpy
uint8, HxWx3, frames of different sizes allowed) and returns one list of detections per frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from streamwarden.inference.detection import Detection


class ModelError(Exception):
    """A model that cannot be used: missing, not a model, unexpected outputs, bad labels.

    The message names the file and says what is wrong, for a start-up error or an API error.
    """


class Detector(ABC):
    name: str = "detector"
    labels: list[str] = []
    #: what actually runs, e.g. "onnxruntime CPUExecutionProvider"; shown in /health
    runtime: str = ""
    #: a warning for /health, e.g. an NVIDIA backend that fell back to the CPU
    warning: str | None = None
    #: (width, height) the model takes, which `tiles = "auto"` compares frames with; None:
    #: unknown (a plugin, HOG), so "auto" never tiles for it
    input_size: tuple[int, int] | None = None
    #: how many `detect` calls the worker may run at once, each on its own thread: ONNX
    #: Runtime sessions allow it; a plugin or a LiteRT interpreter (one set of tensors) not
    parallel_calls: int = 1

    @abstractmethod
    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """Run the model on a batch of frames."""


class WrappedDetector(Detector):
    """A detector that changes what another one sees or returns (tiles, a class filter).

    It reports the wrapped model's name, labels, runtime and warning as its own, so the
    worker's `ready` message and /inference still describe the model that runs.
    """

    def __init__(self, inner: Detector):
        self.inner = inner
        self.name, self.labels = inner.name, inner.labels
        self.runtime, self.warning = inner.runtime, inner.warning
        self.input_size = inner.input_size
        self.parallel_calls = inner.parallel_calls


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression on (N, 4) x0,y0,x1,y1 boxes; indices kept, best first."""
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = np.maximum(0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(0, xx1 - xx0) * np.maximum(0, yy1 - yy0)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0)
        order = rest[overlap <= iou]
    return keep


def letterbox(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, int, int]:
    """Scale `frame` to fit widthxheight keeping its aspect, pad the rest (grey 114).

    Returns the padded image and (scale, pad_x, pad_y) to map boxes back.
    """
    import cv2

    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((height, width, 3), 114, dtype=np.uint8)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    out[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return out, scale, pad_x, pad_y


def unletterbox(boxes: np.ndarray, scale: float, pad_x: int, pad_y: int,
                frame_w: int, frame_h: int) -> np.ndarray:
    """Boxes in letterboxed input pixels → boxes normalised 0-1 of the original frame."""
    out = boxes.astype(np.float64).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad_x) / scale / frame_w
    out[:, [1, 3]] = (out[:, [1, 3]] - pad_y) / scale / frame_h
    return np.clip(out, 0.0, 1.0)
