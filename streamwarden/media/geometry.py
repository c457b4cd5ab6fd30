"""Where a detection sub-stream's picture lies in the main stream's picture.

A camera's sub-stream shows the same scene as its main stream at a lower resolution. When
both have the same aspect ratio a point has the same normalised coordinates in both. When
they differ (a 640x480 sub-stream of a 1920x1080 main), cameras do one of two things, and
`detect_fit` on the stream says which:

- `stretch` (the default; what most cameras do): the whole sensor picture is scaled into the
  sub-stream's size, squashing it. Normalised coordinates are the same in both streams.
- `crop`: the sub-stream shows the centre of the picture, cut to its own aspect ratio: the
  largest centred rectangle of the sub-stream's aspect that fits in the main picture
  (4:3 of a 16:9 main: full height, the middle three quarters of the width).

`region` is where the sub-stream's picture lies in the main one (normalised x, y, w, h);
`to_main` maps a normalised box of the sub-stream into normalised main coordinates and
`to_pixels` turns a normalised box into main-stream pixels. Plain numbers, no GStreamer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Fit = Literal["stretch", "crop"]


@dataclass(frozen=True)
class Region:
    """A rectangle in normalised coordinates of the main picture."""

    x: float = 0.0
    y: float = 0.0
    w: float = 1.0
    h: float = 1.0

    @property
    def whole(self) -> bool:
        return self == Region()


def region(sub: tuple[int, int] | None, main: tuple[int, int] | None,
           fit: Fit = "stretch") -> Region:
    """Where a `sub` (width, height) picture lies in a `main` one; the whole picture when
    either size is unknown or the fit is `stretch`."""
    if fit == "stretch" or not sub or not main or min(*sub, *main) <= 0:
        return Region()
    sub_aspect = sub[0] / sub[1]
    main_aspect = main[0] / main[1]
    if abs(sub_aspect - main_aspect) < 1e-3:
        return Region()
    if sub_aspect < main_aspect:  # narrower: full height, centred horizontally
        w = sub_aspect / main_aspect
        return Region(x=(1.0 - w) / 2, w=w)
    h = main_aspect / sub_aspect  # wider: full width, centred vertically
    return Region(y=(1.0 - h) / 2, h=h)


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def to_main(box: Box, where: Region) -> Box:
    """A normalised box of the sub-stream in normalised main-stream coordinates."""
    x0, y0, x1, y1 = box
    return (_clip(where.x + x0 * where.w), _clip(where.y + y0 * where.h),
            _clip(where.x + x1 * where.w), _clip(where.y + y1 * where.h))


def to_pixels(box: Box, main: tuple[int, int]) -> tuple[int, int, int, int]:
    """A normalised box in pixels of a `main` (width, height) picture."""
    width, height = main
    x0, y0, x1, y1 = box
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


def canvas_size(sub: tuple[int, int], main: tuple[int, int] | None,
                where: Region) -> tuple[int, int]:
    """The size of a picture at the sub-stream's scale with the main stream's aspect ratio,
    in which the sub-stream's picture occupies `where` (for drawing boxes on pictures that
    must match main-stream coordinates): (width, height)."""
    if not main or min(main) <= 0:
        return sub
    if where.whole:  # stretch: same content, the main stream's aspect at the sub's width
        return sub[0], max(1, round(sub[0] * main[1] / main[0]))
    return max(1, round(sub[0] / where.w)), max(1, round(sub[1] / where.h))
