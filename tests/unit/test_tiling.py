"""Tiling: which grid a frame gets, how tiles cover it, and merging boxes across tiles.

The merge cases use a detector that really looks at the pixels it is given: coloured
rectangles on black (white = person, red = car), found as connected components of each
colour in the crop. So a rectangle cut by a tile's edge comes back cut, exactly as a model
sees part of an object, and the expected answer is the rectangle as drawn.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector
from streamwarden.inference.detectors.tiling import (
    OVERLAP,
    TiledDetector,
    grid_for,
    layout,
    tile_count,
)

COLOURS = {"person": (255, 255, 255), "car": (0, 0, 255)}


class RectangleDetector(Detector):
    """Finds solid rectangles of the label colours; records what it was asked to look at."""

    name = "rectangles"
    labels = list(COLOURS)

    def __init__(self, input_size: tuple[int, int] | None = (416, 416)):
        self.input_size = input_size
        self.calls: list[list[tuple[int, int]]] = []

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        self.calls.append([f.shape[1::-1] for f in frames])
        return [self._one(np.ascontiguousarray(f)) for f in frames]

    def _one(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        out = []
        for label, colour in COLOURS.items():
            mask = np.all(frame == colour, axis=2).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            for x, y, bw, bh, _ in stats[1:count]:
                out.append(Detection(label, 0.9, (x / w, y / h, (x + bw) / w, (y + bh) / h)))
        return out


def scene(width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int]]]
          ) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    for label, (x0, y0, x1, y1) in objects:
        frame[y0:y1, x0:x1] = COLOURS[label]
    return frame


def in_pixels(found: list[Detection], width: int, height: int) -> list[tuple]:
    return sorted((d.label, round(d.box[0] * width), round(d.box[1] * height),
                   round(d.box[2] * width), round(d.box[3] * height)) for d in found)


# ---- the grid ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("tiles", "size", "model", "grid"), [
    ("auto", (640, 360), (416, 416), (2, 1)),    # 16:9, wider than the input: two squares
    ("auto", (360, 640), (416, 416), (1, 2)),    # portrait: stacked
    ("auto", (640, 480), (416, 416), (1, 1)),    # 4:3 wastes little of a square input
    ("auto", (400, 225), (416, 416), (1, 1)),    # the model already sees every pixel
    ("auto", (640, 360), None, (1, 1)),          # input unknown (a plugin): never tiled
    ("auto", (1280, 360), (416, 416), (4, 1)),   # a panorama
    ("off", (1280, 720), (416, 416), (1, 1)),
    (1, (1280, 720), (416, 416), (1, 1)),
    (2, (1280, 720), (416, 416), (2, 1)),
    (4, (1280, 720), (416, 416), (2, 2)),
    (6, (1280, 720), (416, 416), (3, 2)),
    (2, (640, 480), None, (2, 1)),               # a count applies whatever the model
])
def test_grid(tiles, size, model, grid):
    assert grid_for(tiles, *size, model) == grid


def test_tile_count():
    assert tile_count("auto") is None and tile_count("off") == 1 and tile_count(6) == 6


@pytest.mark.parametrize(("cols", "rows"), [(1, 1), (2, 1), (3, 2), (4, 1)])
def test_tiles_cover_the_frame_and_overlap(cols, rows):
    width, height = 1280, 720
    tiles = layout(width, height, cols, rows)
    assert len(tiles) == cols * rows
    covered = np.zeros((height, width), bool)
    for t in tiles:
        assert t.x >= 0 and t.x + t.w <= width and t.y >= 0 and t.y + t.h <= height
        covered[t.y:t.y + t.h, t.x:t.x + t.w] = True
    assert covered.all()
    xs = sorted({t.x for t in tiles})
    for left, right in itertools.pairwise(xs):
        assert left + tiles[0].w - right >= OVERLAP * tiles[0].w - 1  # shared columns


# ---- merging -----------------------------------------------------------------------------------

W, H = 640, 360  # two tiles: x 0-356 and 284-640 (overlap 284-356)


def test_merge_across_the_seam_without_duplicates():
    objects = [
        ("person", (300, 100, 330, 180)),  # inside the overlap: whole in both tiles
        ("car", (200, 250, 480, 330)),     # wider than the overlap: cut in both tiles
        ("person", (330, 20, 400, 90)),    # crosses tile 0's right edge, whole in tile 1
        ("person", (20, 200, 60, 300)),    # only in tile 0
        ("person", (560, 40, 600, 140)),   # only in tile 1
        ("car", (250, 120, 320, 170)),     # a car overlapping the first person's box
    ]
    detector = RectangleDetector()
    tiled = TiledDetector(detector, "auto", iou=0.45)
    [found] = tiled.detect([scene(W, H, objects)])
    assert detector.calls == [[(356, 360), (356, 360)]], "one call, two tiles"
    assert in_pixels(found, W, H) == sorted((label, *box) for label, box in objects)


def test_an_object_cut_in_one_tile_only_is_not_doubled():
    # 290-350 lies in both tiles, but 270-350 starts left of tile 1: tile 1 sees its right
    # part (cut at its left edge), tile 0 sees it whole
    objects = [("person", (270, 50, 350, 250))]
    [found] = TiledDetector(RectangleDetector(), 2, iou=0.45).detect([scene(W, H, objects)])
    assert in_pixels(found, W, H) == [("person", 270, 50, 350, 250)]


def test_side_by_side_objects_of_one_label_stay_two():
    objects = [("person", (250, 100, 300, 200)), ("person", (310, 100, 370, 200))]
    [found] = TiledDetector(RectangleDetector(), 2, iou=0.45).detect([scene(W, H, objects)])
    assert in_pixels(found, W, H) == sorted((label, *box) for label, box in objects)


def test_a_batch_of_frames_of_different_sizes_is_one_call():
    detector = RectangleDetector()
    small = scene(320, 320, [("car", (10, 10, 100, 100))])
    wide = scene(W, H, [("person", (100, 100, 150, 200))])
    found = TiledDetector(detector, "auto", iou=0.45).detect([wide, small])
    assert detector.calls == [[(356, 360), (356, 360), (320, 320)]]
    assert in_pixels(found[0], W, H) == [("person", 100, 100, 150, 200)]
    assert in_pixels(found[1], 320, 320) == [("car", 10, 10, 100, 100)]


def test_off_is_the_whole_frame_untouched():
    detector = RectangleDetector()
    frame = scene(W, H, [("person", (300, 100, 330, 180))])
    [found] = TiledDetector(detector, "off", iou=0.45).detect([frame])
    assert detector.calls == [[(W, H)]]
    assert in_pixels(found, W, H) == [("person", 300, 100, 330, 180)]
