"""Deliberately misbehaving detectors: the true edge where a test may stand in for a model."""

from __future__ import annotations

import os
import time

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector


class SlowDetector(Detector):
    """A model that takes `SLOW_DETECTOR_S` (default 1 s) per call and always sees a person."""

    name = "slow-test-model"
    labels = ["person"]
    runtime = "python sleep"

    def __init__(self) -> None:
        self.delay = float(os.environ.get("SLOW_DETECTOR_S", "1.0"))

    def detect(self, frames):
        time.sleep(self.delay)
        return [[Detection("person", 0.9, (0.1, 0.1, 0.5, 0.9))] for _ in frames]


class HangingDetector(Detector):
    """Never returns (a runtime stuck in a driver call)."""

    name = "hanging-test-model"
    labels = ["person"]

    def detect(self, frames):
        time.sleep(3600)
        return [[] for _ in frames]


class LeakingDetector(Detector):
    """Keeps 40 MB per call forever (a runtime that leaks)."""

    name = "leaking-test-model"
    labels = ["person"]

    def __init__(self) -> None:
        self._kept: list[bytearray] = []

    def detect(self, frames):
        block = bytearray(40 * 1024 * 1024)
        block[::4096] = b"\x01" * len(block[::4096])  # touch every page: resident, not virtual
        self._kept.append(block)
        return [[] for _ in frames]


class RisingDetector(Detector):
    """Always sees a person, a little more surely each call (0.5, 0.6, ... up to 0.95): an
    event that opens, then gets a better picture (event_update)."""

    name = "rising-test-model"
    labels = ["person"]
    runtime = "python"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frames):
        confidence = min(0.95, 0.5 + 0.1 * self.calls)
        self.calls += 1
        return [[Detection("person", confidence, (0.2, 0.1, 0.6, 0.9))] for _ in frames]
