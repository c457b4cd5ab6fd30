"""A cheap motion gate: skip the model when the picture has not changed since its last call.

Frame differencing on a 64-pixel-wide grey image costs tens of microseconds; a model call
costs tens of milliseconds. Each frame is compared with the thumbnail of the frame the model
last looked at, not with the previous frame: what the model would say is what it said then,
so a still scene costs no call at all, and a slow change (someone creeping in, dusk) adds up
until it counts, where frame-to-frame differences would each stay under the threshold. The
tracked objects hear a skipped frame as "unchanged" (objects.py), so a parked car is not
forgotten. A call every `refresh_s` (a minute) is only a safety net; it was every 10 s while
frames were compared with their predecessor, and in a still scene those calls were most of
the worker's cost (`bench/inference.py --clients sw-still,sw-rec-only`).

A new picture in which the model found something is looked at twice more even if it does not
change (`found`): an object becomes an event on the median of its scores over three calls
(confirm.py), so a person standing still in a still scene would otherwise never become one.

A stream's masks (a tree in the wind, the camera's clock overlay) are left out of the
comparison: the mask is rasterised once per thumbnail size and mask change, and only the
pixels outside it count, against a threshold scaled to how many there are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamwarden.inference.confirm import PADDED_TO
from streamwarden.inference.geometry import Area, Point

THUMB_WIDTH = 64
PIXEL_DELTA = 12  # grey levels; below this is sensor/encoder noise
CHANGED_FRACTION = 0.004  # of the thumbnail's pixels
REFRESH_S = 60.0
# Something found in a new picture is looked at this many more times even if nothing moves:
# an object becomes an event on the median of its scores over at least three calls
# (confirm.py), and a still picture would otherwise give it one call and never an event.
LOOK_AGAIN = PADDED_TO - 1


class MotionGate:
    def __init__(self, refresh_s: float = REFRESH_S, mask: Sequence[Sequence[Point]] = ()):
        self.refresh_s = refresh_s
        self._reference: np.ndarray | None = None
        self._last_call = float("-inf")
        self._fresh = False  # the last call was for a new picture (not a look again)
        self._look_again = 0
        self.set_mask(mask)

    def set_mask(self, polygons: Sequence[Sequence[Point]]) -> None:
        """Ignore motion inside these polygons (normalised 0-1) from the next frame on."""
        self._mask = Area([[(float(x), float(y)) for x, y in p] for p in polygons])
        self._reference = None  # what the new mask uncovers must be looked at again
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
        reference = self._reference  # the picture of the last call
        moved = reference is None or reference.shape != thumb.shape or self._changed(
            cv2.absdiff(reference, thumb) > PIXEL_DELTA)
        if moved or now - self._last_call >= self.refresh_s:
            self._last_call, self._reference, self._fresh = now, thumb, True
            self._look_again = 0
            return True
        if self._look_again > 0:
            self._look_again -= 1
            self._last_call, self._fresh = now, False
            return True
        return False

    def found(self, anything: bool) -> None:
        """What the call this gate let through found (the worker tells it). Something found in
        a new picture is looked at `LOOK_AGAIN` more times, moving or not."""
        if anything and self._fresh:
            self._look_again = LOOK_AGAIN
        self._fresh = False

    def _changed(self, differs: np.ndarray) -> bool:
        counted = self._pixels_counted(differs.shape)
        if counted is None:
            return bool(np.count_nonzero(differs) >= CHANGED_FRACTION * differs.size)
        total = int(np.count_nonzero(counted))
        return total > 0 and bool(np.count_nonzero(differs & counted)
                                  >= CHANGED_FRACTION * total)
