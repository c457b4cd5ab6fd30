"""Two scales of one frame: what a frame-aspect model sees with `[inference] tiles = "auto"`.

Why: a detector with a small input (NanoDet-g: 416 px) sees a 100 px person in 720p at 32 px
when the whole frame is shrunk to it, and loses most of them. Two square tiles (the older
answer, detectors/tiling.py) give the model each half at 1.78x that size, but cut the people
who stand on the seam or are taller than a tile. A model that takes any input size can
instead look at the whole 16:9 frame at the tiles' scale (736x416) in one call, with no seam;
measured on `bench/detect_quality.py`'s street (2026-12-01, frame_width 768): recall for
people 100-120 / 120-200 px 1.00 / 1.00 like the tiles, but 0.73 for people >= 200 px (the
tiles 0.80), which the model finds (0.97) when the frame is shrunk to 416x256. So the frame
is looked at twice: widened for everything, and whole at (below) the model's size for the objects at
least `LARGE` of the frame tall, the only ones that pass asks about. Its small boxes are
dropped: at 416x256 the model also sees people in the background's texture (precision fell
from 0.97 to 0.90 with them kept; 0.97 without). Recall >= 200 px then 1.00.

The whole-frame pass need not be at the model's size: its objects are a quarter of the frame
tall or more, so at 320x192 they are still 48 px and up. Offline on the same scene
(2026-12-01, every 5th frame, INT8, frame_width 768), the whole pass at long side 416, 352,
320, 256 and 224 gave the same recall in every band (>= 200 px 1.00; widened alone 0.56)
and precision 0.990 / 0.990 / 0.990 / 0.989 / 0.988. At `WHOLE_FRACTION` (320 for 416) it
costs 44 % fewer pixels than at 416x256: 736x416 + 320x192 is 0.81x the pixels of two
416x416 tiles, and a 640x360 sub-stream's call fell from 33 to 29 ms of CPU.
"""

from __future__ import annotations

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import nms

LARGE = 0.25  # the whole-frame pass answers for objects at least this tall (of the frame)
WHOLE_FRACTION = 0.75  # ...and runs at this fraction of the model's size (rounded to 32 px)


def combine_scales(fine: list[Detection], coarse: list[Detection], iou: float,
                   large: float = LARGE) -> list[Detection]:
    """The widened pass's detections plus the whole-frame pass's large ones, per label
    suppressed (an object both found keeps its better box), best first. Boxes are 0-1."""
    both = fine + [d for d in coarse if d.box[3] - d.box[1] >= large]
    out: list[Detection] = []
    for label in sorted({d.label for d in both}):
        group = [d for d in both if d.label == label]
        keep = nms(np.array([d.box for d in group], np.float64),
                   np.array([d.confidence for d in group], np.float64), iou)
        out.extend(group[i] for i in keep)
    out.sort(key=lambda d: -d.confidence)
    return out
