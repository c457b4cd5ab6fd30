"""Boxes and labels drawn on a frame, encoded as JPEG (event pictures, live snapshots)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from streamwarden.inference.detection import Detection

BOX_BGR = (0, 0, 255)  # red: visible on most scenes, and what tests look for


def draw_detections(frame: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    import cv2

    out = frame.copy()
    h, w = out.shape[:2]
    thickness = max(2, w // 320)
    for det in detections:
        x0, y0, x1, y1 = det.box
        p0 = (int(x0 * (w - 1)), int(y0 * (h - 1)))
        p1 = (int(x1 * (w - 1)), int(y1 * (h - 1)))
        cv2.rectangle(out, p0, p1, BOX_BGR, thickness)
        text = f"{det.label} {det.confidence:.2f}"
        cv2.putText(out, text, (p0[0] + 3, max(14, p0[1] + 16)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, BOX_BGR, 1, cv2.LINE_AA)
    return out


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def render_jpeg(frame: np.ndarray, detections: Iterable[Detection], width: int | None = None,
                quality: int = 85) -> bytes:
    """Boxes drawn, scaled to `width` (keeping the aspect), as JPEG: live snapshots, MJPEG."""
    import cv2

    picture = draw_detections(frame, detections)
    if width is not None and width != picture.shape[1]:
        height = max(1, round(picture.shape[0] * width / picture.shape[1]))
        picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    return encode_jpeg(picture, quality)
