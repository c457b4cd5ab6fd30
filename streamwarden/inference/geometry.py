"""Polygons in normalised frame coordinates: is one valid, where does a box stand, which
thumbnail pixels does an area cover.

Coordinates are fractions of the frame (x right, y down, 0-1), so a zone drawn on a snapshot
holds whatever resolution the decoder or a sub-stream delivers. Shapely (GEOS) does the
geometry: validity, containment and rasterising are its well-tested code, not ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LinearRing, Polygon

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1

MIN_POINTS = 3
MIN_AREA = 1e-6  # of the frame: below this the points are (nearly) on one line


def polygon_problem(points: Sequence[Sequence[float]]) -> str | None:
    """Why `points` is not a usable polygon, in a sentence; None if it is.

    Refused: fewer than 3 points, a coordinate outside 0-1 (or not a number), edges that
    cross each other (a "bow tie": its inside is ambiguous), or no area at all.
    """
    if len(points) < MIN_POINTS:
        return f"a polygon needs at least {MIN_POINTS} points, got {len(points)}"
    for index, point in enumerate(points):
        if len(point) != 2:
            return f"point {index} must be [x, y], got {len(point)} numbers"
        x, y = point
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also catches NaN
            return (f"point {index} [{x:g}, {y:g}] is outside the frame: coordinates are "
                    "fractions of the width and height, from 0 to 1")
    if Polygon(points).convex_hull.area < MIN_AREA:  # a bow tie's signed area is 0 too
        return "the polygon has no area: its points lie on one line"
    if not LinearRing(points).is_simple:
        return ("the polygon's edges cross each other (self-intersecting): list its points "
                "in order around its outline")
    return None


def anchor(box: Box) -> Point:
    """Where an object stands: the bottom centre of its box (its feet, a car's tyres).

    Zones and masks are judged at this one point, as Frigate does: a person whose head
    overlaps the driveway while standing on the pavement is not in the driveway.
    """
    x0, _, x1, y1 = box
    return ((x0 + x1) / 2.0, y1)


def centre(box: Box) -> Point:
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Area:
    """One or more polygons as one area, prepared for many point look-ups."""

    def __init__(self, polygons: Sequence[Sequence[Point]]):
        self.empty = not polygons
        self._shape = shapely.union_all([Polygon(p) for p in polygons])
        shapely.prepare(self._shape)

    def contains(self, point: Point) -> bool:
        """True inside or on the edge (a box resting on the frame's bottom edge is in a zone
        drawn down to that edge)."""
        if self.empty:
            return False
        return bool(shapely.intersects_xy(self._shape, point[0], point[1]))

    def raster(self, width: int, height: int) -> np.ndarray:
        """A (height, width) boolean image: True where a pixel's centre lies in the area."""
        if self.empty:
            return np.zeros((height, width), bool)
        xs = (np.arange(width) + 0.5) / width
        ys = (np.arange(height) + 0.5) / height
        grid_x, grid_y = np.meshgrid(xs, ys)
        return np.asarray(shapely.contains_xy(self._shape, grid_x, grid_y), bool)
