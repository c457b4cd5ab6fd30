"""A cheap motion gate: skip the model when a small grey thumbnail has not changed.

Frame differencing on a 64-pixel-wide grey image costs tens of microseconds; a model call
costs tens of milliseconds. A static scene still gets a model call every `refresh_s`, so an
object that stands still is not forgotten.
"""

from __future__ import annotations

import numpy as np

THUMB_WIDTH = 64
PIXEL_DELTA = 12  # grey levels; below this is sensor/encoder noise
CHANGED_FRACTION = 0.004  # of the thumbnail's pixels


class MotionGate:
    def __init__(self, refresh_s: float = 10.0):
        self.refresh_s = refresh_s
        self._reference: np.ndarray | None = None
        self._last_call = float("-inf")

    def should_run(self, frame: np.ndarray, now: float) -> bool:
        import cv2

        h, w = frame.shape[:2]
        thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                           (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))),
                           interpolation=cv2.INTER_AREA)
        thumb = cv2.GaussianBlur(thumb, (3, 3), 0)
        reference, self._reference = self._reference, thumb
        moved = reference is None or reference.shape != thumb.shape or (
            np.count_nonzero(cv2.absdiff(reference, thumb) > PIXEL_DELTA)
            >= CHANGED_FRACTION * thumb.size)
        if moved or now - self._last_call >= self.refresh_s:
            self._last_call = now
            return True
        return False
