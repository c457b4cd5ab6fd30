"""The config (and API) shapes of zones, masks and `label@zone` selectors.

A stream's `zones` are named polygons, its `masks` unnamed ones, every point `[x, y]` in
fractions of the frame (0-1, origin top left) so that they hold at any resolution:

    zones = [{ name = "driveway", points = [[0.1, 0.55], [0.6, 0.55], [0.6, 1], [0.1, 1]] }]
    masks = [[[0, 0], [0.35, 0], [0.35, 0.07], [0, 0.07]]]   # the camera's clock overlay

A polygon is refused with a sentence when it has fewer than 3 points, a coordinate outside
0-1, or edges that cross (inference/geometry.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from streamwarden.inference.geometry import polygon_problem
from streamwarden.inference.zones import ZONE_NAME_PATTERN, Selector

MAX_POINTS = 64
MAX_ZONES = 32
MAX_MASKS = 32


def _valid_polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if problem := polygon_problem(points):
        raise ValueError(problem)
    return points


def _valid_selector(text: str) -> str:
    Selector.parse(text)  # raises ValueError with the reason
    return text


PolygonPoints = Annotated[list[tuple[float, float]], Field(max_length=MAX_POINTS),
                          AfterValidator(_valid_polygon)]
ObjectSelector = Annotated[str, Field(min_length=1, max_length=100),
                           AfterValidator(_valid_selector)]


class ZoneConfig(BaseModel):
    """A named area; events list the zones their object entered (judged at the bottom centre
    of its box)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=ZONE_NAME_PATTERN)]
    points: PolygonPoints


def duplicate_zone_problem(zones: Iterable[ZoneConfig]) -> str | None:
    seen: set[str] = set()
    for zone in zones:
        if zone.name in seen:
            return f"zone {zone.name!r} is defined twice: zone names must be unique"
        seen.add(zone.name)
    return None


def unknown_zone_problem(where: str, selectors: Iterable[str], known: Iterable[str],
                         scope: str) -> str | None:
    """A sentence naming the first selector whose zone is not in `known` (None if all are)."""
    names = sorted(set(known))
    for text in selectors:
        zone = Selector.parse(text).zone
        if zone is not None and zone not in names:
            have = ", ".join(names) if names else "none"
            return f"{where} {text!r}: no zone {zone!r} {scope} (zones: {have})"
    return None
