"""Associating detections across frames: which box in this frame is which object.

`Tracker` is the small interface the event log uses; `NorfairTracker` implements it with
Norfair (BSD-3, the tracker Frigate uses: a Kalman filter per object, matched by box overlap
with its prediction). Upstream `norfair` pins numpy < 2, so the dependency is its maintained
fork `norfair-enough` (same `norfair` module and API, numpy/scipy/rich only, no torch).
supervision's ByteTrack moved to roboflow's `trackers`, which needs the non-headless
`opencv-python` (it clashes with the headless build used here), so it was not an option.

Boxes are scaled to a virtual 1000-pixel frame before Norfair sees them: its Kalman filter's
default noise is tuned for pixel units, and on 0-1 coordinates it would trust its own
prediction over every measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streamwarden.inference.detection import Detection

SCALE = 1000.0  # 0-1 coordinates → a virtual 1000-pixel frame
# 1 - IoU with the object's predicted box above which a detection is not that object
# (IoU below 0.1): loose enough for a person walking at 5 fps, tight enough for two people
MAX_DISTANCE = 0.9


class Tracker(Protocol):
    def update(self, detections: Sequence[Detection]) -> list[tuple[int, Detection]]:
        """One model call's detections (possibly none: objects age) → (track id, detection)
        for every detection, ids stable while the tracker follows the same object."""
        ...


def warm_up() -> None:
    """Import Norfair (about 0.8 s: scipy, rich) before the first result needs it, on the
    thread that waits for the model anyway, not on the monitor thread while frames queue."""
    import norfair  # noqa: F401


class NorfairTracker:
    """One per stream. `memory` frames without a match and the track is forgotten.

    Norfair's hit counter is topped up by 2 per match and only set to its maximum when a
    track leaves its initialisation; with `initialization_delay=0` (an event from the first
    sighting) no track ever does, so a young track started at 1 and was dropped after two or
    three missed calls: a person the model missed briefly right after appearing came back
    under a new id, as a second event (measured on bench/detect_quality.py's scene). Every
    match therefore resets the counter to `memory`: a track lives `memory` calls after its
    last sighting, whatever its age, as the object book's `event_gap` says.
    """

    def __init__(self, memory: int):
        from norfair import Tracker as Norfair  # a service without inference never loads it

        self._memory = max(2, memory)
        self._tracker = Norfair(distance_function="iou", distance_threshold=MAX_DISTANCE,
                                hit_counter_max=self._memory, initialization_delay=0,
                                past_detections_length=0)
        self._frame = 0

    def update(self, detections: Sequence[Detection]) -> list[tuple[int, Detection]]:
        from norfair import Detection as NorfairDetection

        self._frame += 1
        frame = self._frame
        wrapped = [NorfairDetection(np.asarray(det.box, float).reshape(2, 2) * SCALE,
                                    label=det.label, data=(frame, index))
                   for index, det in enumerate(detections)]
        matched: list[tuple[int, Detection]] = []
        for obj in self._tracker.update(wrapped):
            seen_frame, index = obj.last_detection.data
            if obj.id is not None and seen_frame == frame:
                obj.hit_counter = self._memory  # see the class's docstring
                matched.append((int(obj.id), detections[index]))
        return matched
