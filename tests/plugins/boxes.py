"""Deterministic detectors for the sub-stream and activity-gate tests.

`FixedBoxDetector` sees one person at the same normalised place in every frame (what a
sub-stream's box maps to is then known exactly). `BrightBoxDetector` finds the light box of
the zoo's `appear` scene (tests/zoo/spec.py) by brightness: no model, no randomness, and it
finds nothing in the still scene, so a detection means the box was really decoded.
"""

from __future__ import annotations

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector

FIXED_BOX = (0.1, 0.2, 0.5, 0.9)


class FixedBoxDetector(Detector):
    name = "fixed-box-test-model"
    labels = ["person"]
    runtime = "python"

    def detect(self, frames):
        return [[Detection("person", 0.9, FIXED_BOX)] for _ in frames]


class BrightBoxDetector(Detector):
    name = "bright-box-test-model"
    labels = ["person"]
    runtime = "numpy"

    def detect(self, frames):
        return [self._one(frame) for frame in frames]

    @staticmethod
    def _one(frame: np.ndarray) -> list[Detection]:
        bright = frame.mean(axis=2) > 140  # the box; the scene is grey 0x40, its grid 0x70
        if bright.mean() < 0.005:
            return []
        rows, cols = np.nonzero(bright)
        h, w = bright.shape
        box = (cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h)
        return [Detection("person", 0.8, tuple(float(v) for v in box))]
