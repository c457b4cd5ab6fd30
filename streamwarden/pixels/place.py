"""A sub-stream's picture in the main stream's geometry, for pictures people look at.

Detections from a sub-stream are reported in main-stream coordinates (media/geometry.py), so
a picture they are drawn on must have the main stream's geometry too: with `stretch` the
squashed sub-stream picture is scaled back to the main aspect ratio; with `crop` it is put
where it lies in the main picture, the rest left black (the sub-stream never saw it). Runs
only for pictures that are drawn (event pictures, snapshots, MJPEG), never per decoded frame.
"""

from __future__ import annotations

import numpy as np

from streamwarden.media.geometry import Region, canvas_size


def place(frame: np.ndarray, main: tuple[int, int] | None, where: Region) -> np.ndarray:
    """`frame` (a sub-stream picture, BGR) on a canvas with the main stream's aspect."""
    import cv2

    height, width = frame.shape[:2]
    canvas_w, canvas_h = canvas_size((width, height), main, where)
    if (canvas_w, canvas_h) == (width, height):
        return frame
    if where.whole:
        return cv2.resize(frame, (canvas_w, canvas_h), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((canvas_h, canvas_w, 3), dtype=frame.dtype)
    x = min(canvas_w - width, round(where.x * canvas_w))
    y = min(canvas_h - height, round(where.y * canvas_h))
    canvas[y:y + height, x:x + width] = frame
    return canvas
