"""OpenCV's built-in HOG + linear SVM pedestrian detector: a person detector with no weights file.

The fallback when LiteRT or the extracted MediaPipe model is missing (an architecture without
a LiteRT wheel, say). It finds upright, whole-body pedestrians of at least 64x128 pixels and
little else; it is the classical baseline, not a substitute for a trained network.
"""

from __future__ import annotations

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, nms


class HogPersonDetector(Detector):
    name = "opencv-hog-person"
    labels = ["person"]

    def __init__(self, confidence: float = 0.5, iou: float = 0.45):
        import cv2

        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self.confidence, self.iou = confidence, iou
        self.runtime = f"OpenCV {cv2.__version__} HOG"

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(f) for f in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        rects, weights = self._hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8),
                                                    scale=1.05)
        if len(rects) == 0:
            return []
        # SVM margins are unbounded; squash to 0-1 so `confidence` means the same everywhere.
        scores = 1.0 / (1.0 + np.exp(-np.ravel(weights).astype(np.float64)))
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in rects], dtype=np.float64)
        keep = [i for i in nms(boxes, scores, self.iou) if scores[i] >= self.confidence]
        return [Detection("person", float(scores[i]),
                          (boxes[i, 0] / w, boxes[i, 1] / h, boxes[i, 2] / w, boxes[i, 3] / h))
                for i in keep]
