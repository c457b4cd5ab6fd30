"""A cheap motion gate: skip the model when a small grey thumbnail has not changed.

Frame differencing on a 64-pixel-wide grey image costs tens of microseconds; a model call
costs tens of milliseconds. A static scene still gets a model call every `refresh_s`, so an
object that stands still is not forgotten.

A stream's masks (a tree in the wind, the camera's clock overlay) are left out of the
comparison: the mask is rasterised once per thumbnail size and mask change, and only the
pixels outside it count, against a threshold scaled to how many there are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamwarden.inference.geometry import Area, Point

THUMB_WIDTH = 64
PIXEL_DELTA = 12  # grey levels; below this is sensor/encoder noise
CHANGED_FRACTION = 0.004  # of the thumbnail's pixels


class MotionGate:
    def __init__(self, refresh_s: float = 10.0, mask: Sequence[Sequence[Point]] = ()):
        self.refresh_s = refresh_s
        self._reference: np.ndarray | None = None
        self._last_call = float("-inf")
        self.set_mask(mask)

    def set_mask(self, polygons: Sequence[Sequence[Point]]) -> None:
        """Ignore motion inside these polygons (normalised 0-1) from the next frame on."""
        self._mask = Area([[(float(x), float(y)) for x, y in p] for p in polygons])
        self._counted: np.ndarray | None = None  # pixels outside the mask, per thumbnail size

    def _pixels_counted(self, shape: tuple[int, ...]) -> np.ndarray | None:
        if self._mask.empty:
            return None
        if self._counted is None or self._counted.shape != shape:
            self._counted = ~self._mask.raster(shape[1], shape[0])
        return self._counted

    def should_run(self, frame: np.ndarray, now: float) -> bool:
        import cv2

        h, w = frame.shape[:2]
        thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                           (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))),
                           interpolation=cv2.INTER_AREA)
        thumb = cv2.GaussianBlur(thumb, (3, 3), 0)
        reference, self._reference = self._reference, thumb
        moved = reference is None or reference.shape != thumb.shape or self._changed(
            cv2.absdiff(reference, thumb) > PIXEL_DELTA)
        if moved or now - self._last_call >= self.refresh_s:
            self._last_call = now
            return True
        return False

    def _changed(self, differs: np.ndarray) -> bool:
        counted = self._pixels_counted(differs.shape)
        if counted is None:
            return bool(np.count_nonzero(differs) >= CHANGED_FRACTION * differs.size)
        total = int(np.count_nonzero(counted))
        return total > 0 and bool(np.count_nonzero(differs & counted)
                                  >= CHANGED_FRACTION * total)
