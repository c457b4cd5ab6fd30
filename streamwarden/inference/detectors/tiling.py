"""Tiling: run a detector on overlapping parts of a frame so small objects stay big enough.

Why: a detector with a small square input (NanoDet-g: 416x416) letterboxes a 16:9 frame, so
44 % of its input is padding and a person 100 px tall in 720p is 32 px tall by the time the
model sees them; NanoDet finds about half of those. Two square tiles side by side give the
model each half at 1.78x the size (measured: 14/24 -> 22/24 people of 100 px found) for two
model calls instead of one.

`tiles` (the `[inference] tiles` setting):

- `"off"` (or 1): one call on the whole frame.
- `"auto"`: tiles only where they undo letterboxing: a frame wider than the model's input and
  at least 1.5 times as long as it is short is cut into `round(long / short)` tiles of about
  its short side, along its long side (2 for 16:9). Anything else: the whole frame.
- `N`: N tiles in the grid (cols x rows, cols * rows = N) whose tiles are closest to square.

Neighbouring tiles overlap by `OVERLAP` of a tile, so an object up to that wide is whole in at
least one tile. Merging (pure numpy, `merge`): boxes are mapped back to the frame; a box that
touches a tile edge lying inside the frame is *cut* (the model saw part of an object). A cut
box mostly inside a whole box of the same label is dropped (the neighbour saw the object
whole); cut boxes of the same label from different tiles that meet across a seam are joined
into their union (an object wider than the overlap, cut in both tiles); then per-label
non-maximum suppression removes the duplicates of objects seen whole in two tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, WrappedDetector, nms

OVERLAP = 0.2  # of a tile's width/height shared with its neighbour
AUTO_MIN_ASPECT = 1.5  # "auto" tiles frames at least this elongated (16:9 yes, 4:3 no)
EDGE_PX = 2.0  # a box within this many pixels of an inner tile edge touches it
COVERED = 0.6  # a cut box this much inside a whole box of its label is that object
MAX_TILES = 16

Tiles = int | str  # "auto", "off" or a count


@dataclass(frozen=True)
class Tile:
    """A rectangle of the frame (pixels) and which of its edges lie inside the frame."""

    x: int
    y: int
    w: int
    h: int
    frame_w: int
    frame_h: int

    def inner_edges(self) -> tuple[bool, bool, bool, bool]:
        """(left, top, right, bottom): True where the edge cuts through the frame."""
        return (self.x > 0, self.y > 0, self.x + self.w < self.frame_w,
                self.y + self.h < self.frame_h)


def tile_count(tiles: Tiles) -> int | None:
    """The fixed count a setting asks for (1 for "off"), or None for "auto"."""
    if tiles == "auto":
        return None
    if tiles == "off":
        return 1
    return int(tiles)


def grid_for(tiles: Tiles, width: int, height: int,
             model_input: tuple[int, int] | None) -> tuple[int, int]:
    """(cols, rows) for a frame; `model_input` (w, h) is what "auto" compares the frame with."""
    count = tile_count(tiles)
    if count is None:
        return _auto_grid(width, height, model_input)
    return _closest_to_square(count, width, height)


def _auto_grid(width: int, height: int,
               model_input: tuple[int, int] | None) -> tuple[int, int]:
    long_side, short_side = max(width, height), min(width, height)
    if model_input is None or long_side <= max(model_input):
        return 1, 1  # the model already sees every pixel (or we cannot tell)
    if long_side < AUTO_MIN_ASPECT * short_side:
        return 1, 1
    n = min(MAX_TILES, round(long_side / short_side))
    return (n, 1) if width >= height else (1, n)


def _closest_to_square(count: int, width: int, height: int) -> tuple[int, int]:
    best = (1, 1)
    best_skew = math.inf
    for cols in range(1, count + 1):
        if count % cols:
            continue
        rows = count // cols
        tile_w, tile_h = _span(width, cols), _span(height, rows)
        skew = abs(math.log(tile_w / tile_h))
        if skew < best_skew - 1e-9:
            best, best_skew = (cols, rows), skew
    return best


def _span(length: int, parts: int) -> int:
    """A tile's length so `parts` tiles cover `length` with neighbours overlapping by OVERLAP."""
    if parts <= 1:
        return length
    return min(length, math.ceil(length / (parts - (parts - 1) * OVERLAP)))


def _origins(length: int, span: int, parts: int) -> list[int]:
    if parts <= 1:
        return [0]
    step = (length - span) / (parts - 1)
    return [round(i * step) for i in range(parts)]


def layout(width: int, height: int, cols: int, rows: int) -> list[Tile]:
    """The tiles of a cols x rows grid over a width x height frame, row by row."""
    tile_w, tile_h = _span(width, cols), _span(height, rows)
    return [Tile(x, y, tile_w, tile_h, width, height)
            for y in _origins(height, tile_h, rows) for x in _origins(width, tile_w, cols)]


# ---- merging ---------------------------------------------------------------------------------


@dataclass
class _Box:
    label: str
    score: float
    box: np.ndarray  # x0, y0, x1, y1 in frame pixels
    tile: int
    cut: bool


def _to_frame(tile_index: int, tile: Tile, det: Detection) -> _Box:
    x0, y0, x1, y1 = det.box
    box = np.array([tile.x + x0 * tile.w, tile.y + y0 * tile.h,
                    tile.x + x1 * tile.w, tile.y + y1 * tile.h], dtype=np.float64)
    left, top, right, bottom = tile.inner_edges()
    cut = ((left and box[0] <= tile.x + EDGE_PX) or (top and box[1] <= tile.y + EDGE_PX)
           or (right and box[2] >= tile.x + tile.w - EDGE_PX)
           or (bottom and box[3] >= tile.y + tile.h - EDGE_PX))
    return _Box(det.label, det.confidence, box, tile_index, bool(cut))


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return float(max(0.0, w) * max(0.0, h))


def _meet(a: _Box, b: _Box) -> bool:
    """Two cut pieces of one object: different tiles, overlapping, lined up across the seam."""
    if a.tile == b.tile or a.label != b.label or _intersection(a.box, b.box) <= 0:
        return False
    along_x = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    along_y = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    span_x = min(a.box[2] - a.box[0], b.box[2] - b.box[0])
    span_y = min(a.box[3] - a.box[1], b.box[3] - b.box[1])
    # side by side: their heights mostly agree; stacked: their widths do
    return bool(along_y >= 0.5 * span_y or along_x >= 0.5 * span_x)


def _join_cut(cut: list[_Box]) -> list[_Box]:
    """Union-find over cut pieces that meet; each group becomes its union box, best score."""
    parent = list(range(len(cut)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(cut)):
        for j in range(i + 1, len(cut)):
            if _meet(cut[i], cut[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[_Box]] = {}
    for i, piece in enumerate(cut):
        groups.setdefault(root(i), []).append(piece)
    joined = []
    for pieces in groups.values():
        boxes = np.stack([p.box for p in pieces])
        union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(),
                          boxes[:, 3].max()])
        best = max(pieces, key=lambda p: p.score)
        joined.append(_Box(best.label, best.score, union, best.tile, True))
    return joined


def merge(per_tile: Sequence[tuple[Tile, list[Detection]]], iou: float) -> list[Detection]:
    """Detections of each tile (normalised to the tile) -> one list normalised to the frame."""
    if not per_tile:
        return []
    frame_w, frame_h = per_tile[0][0].frame_w, per_tile[0][0].frame_h
    boxes = [_to_frame(i, tile, det) for i, (tile, dets) in enumerate(per_tile) for det in dets]
    whole = [b for b in boxes if not b.cut]
    cut = [c for c in boxes if c.cut and not any(
        w.label == c.label and _intersection(c.box, w.box) >= COVERED * _area(c.box)
        for w in whole)]
    kept = whole + _join_cut(cut)
    out: list[Detection] = []
    for label in sorted({b.label for b in kept}):
        group = [b for b in kept if b.label == label]
        arr = np.stack([b.box for b in group])
        scores = np.array([b.score for b in group])
        for i in nms(arr, scores, iou):
            x0, y0, x1, y1 = group[i].box
            out.append(Detection(label, group[i].score,
                                 (float(np.clip(x0 / frame_w, 0, 1)),
                                  float(np.clip(y0 / frame_h, 0, 1)),
                                  float(np.clip(x1 / frame_w, 0, 1)),
                                  float(np.clip(y1 / frame_h, 0, 1)))))
    out.sort(key=lambda d: -d.confidence)
    return out


# ---- the detector ----------------------------------------------------------------------------


class TiledDetector(WrappedDetector):
    """Runs `inner` on each frame's tiles (all tiles of the batch in one `detect` call)."""

    def __init__(self, inner: Detector, tiles: Tiles, iou: float):
        super().__init__(inner)
        self.tiles, self.iou = tiles, iou

    def layout_for(self, frame: np.ndarray) -> list[Tile]:
        height, width = frame.shape[:2]
        cols, rows = grid_for(self.tiles, width, height, self.inner.input_size)
        return layout(width, height, cols, rows)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        layouts = [self.layout_for(frame) for frame in frames]
        crops = [frame[t.y:t.y + t.h, t.x:t.x + t.w]
                 for frame, tiles in zip(frames, layouts, strict=True) for t in tiles]
        found = self.inner.detect(crops)
        out, start = [], 0
        for tiles in layouts:
            chunk = found[start:start + len(tiles)]
            start += len(tiles)
            if len(tiles) == 1:
                out.append(chunk[0])  # the whole frame: nothing to map or merge
            else:
                out.append(merge(list(zip(tiles, chunk, strict=True)), self.iou))
        return out
