"""A stream's zones and masks as the event log uses them, and `label@zone` selectors.

`Scene` is compiled once per change of a stream's zones (config or `PUT /streams/{id}/zones`)
and asked, for every detection, whether it stands in a mask (dropped) and which zones it
stands in. `Selector` is one entry of `record_on` or `[mqtt] objects`: `"person"` (anywhere),
`"person@driveway"` (only while in that zone) or `"*@driveway"` (any label in that zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamwarden.inference.geometry import Area, Box, Point, anchor

ZONE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
ANY_LABEL = "*"


@dataclass(frozen=True)
class Placement:
    masked: bool
    zones: tuple[str, ...]


class Scene:
    """Named zones and masks of one stream; judged at a box's bottom centre (`anchor`)."""

    def __init__(self, zones: Sequence[tuple[str, Sequence[Point]]] = (),
                 masks: Sequence[Sequence[Point]] = ()):
        self.zone_names = tuple(name for name, _ in zones)
        self._zones = [(name, Area([points])) for name, points in zones]
        self._mask = Area(list(masks))

    def place(self, box: Box) -> Placement:
        point = anchor(box)
        if self._mask.contains(point):
            return Placement(True, ())
        return Placement(False, tuple(name for name, area in self._zones
                                      if area.contains(point)))


@dataclass(frozen=True)
class Selector:
    label: str  # or "*"
    zone: str | None

    @classmethod
    def parse(cls, text: str) -> Selector:
        """`label` or `label@zone`; a ValueError says what is wrong."""
        label, at, zone = text.partition("@")
        label = label.strip()
        if not label:
            raise ValueError(f"{text!r}: name a label, as in \"person\" or \"person@driveway\"")
        if not at:
            return cls(label, None)
        if not re.match(ZONE_NAME_PATTERN, zone):
            raise ValueError(f"{text!r}: {zone!r} is not a zone name (1-32 letters, digits, "
                             "'_' or '-')")
        return cls(label, zone)

    def matches(self, label: str, zones: Iterable[str]) -> bool:
        if self.label not in (ANY_LABEL, label):
            return False
        return self.zone is None or self.zone in zones


def parse_selectors(texts: Iterable[str]) -> tuple[Selector, ...]:
    return tuple(Selector.parse(text) for text in texts)


def any_match(selectors: Iterable[Selector], label: str, zones: Iterable[str]) -> bool:
    zones = tuple(zones)
    return any(s.matches(label, zones) for s in selectors)

