"""Deliberately misbehaving or scripted detectors: the true edge where a test may stand in
for a model."""

from __future__ import annotations

import json
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


class ScriptedDetector(Detector):
    """Reports the boxes a script says, by time since its first call: object motion that is
    deterministic and costs nothing, for tracking, zones and masks end to end.

    `SCRIPTED_DETECTOR` holds JSON: a list of objects, each `{"label", "from": box,
    "to": box (default: from), "start": s, "end": s (default: forever)}`, the box moving
    linearly from `from` at `start` to `to` at `end`, present only in between.
    """

    name = "scripted-test-model"
    labels = ["person", "car"]
    runtime = "python script"

    def __init__(self) -> None:
        self.script = json.loads(os.environ["SCRIPTED_DETECTOR"])
        self.t0: float | None = None

    def detect(self, frames):
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        t = now - self.t0
        found = [Detection(item["label"], item.get("confidence", 0.9), _box_at(item, t))
                 for item in self.script
                 if item.get("start", 0.0) <= t < item.get("end", float("inf"))]
        return [list(found) for _ in frames]


def _box_at(item: dict, t: float) -> tuple[float, float, float, float]:
    start, end = item.get("start", 0.0), item.get("end", float("inf"))
    to = item.get("to", item["from"])
    share = 0.0 if end == float("inf") else (t - start) / (end - start)
    x0, y0, x1, y1 = (a + (b - a) * share for a, b in zip(item["from"], to, strict=True))
    return (x0, y0, x1, y1)


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
