"""Sub-stream boxes in main-stream coordinates (media/geometry.py)."""

from __future__ import annotations

import pytest

from streamwarden.media.geometry import Region, canvas_size, region, to_main, to_pixels

BOX = (0.1, 0.2, 0.5, 0.9)


def test_same_aspect_keeps_normalised_boxes_and_scales_pixels():
    where = region((640, 360), (1920, 1080), "crop")
    assert where.whole
    assert to_main(BOX, where) == BOX
    assert to_pixels(to_main(BOX, where), (1920, 1080)) == (192, 216, 960, 972)


def test_stretch_keeps_normalised_boxes_whatever_the_aspects():
    where = region((640, 480), (1920, 1080), "stretch")
    assert where.whole
    assert to_main(BOX, where) == BOX
    assert to_pixels(BOX, (1920, 1080)) == (192, 216, 960, 972)


def test_crop_of_a_narrower_sub_stream_is_the_centre_columns():
    where = region((640, 480), (1920, 1080), "crop")  # 4:3 inside 16:9
    assert where.w == pytest.approx(0.75) and where.x == pytest.approx(0.125)
    assert (where.y, where.h) == (0.0, 1.0)
    x0, y0, x1, y1 = to_main(BOX, where)
    assert (x0, x1) == (pytest.approx(0.2), pytest.approx(0.5))
    assert (y0, y1) == (pytest.approx(0.2), pytest.approx(0.9))
    assert to_pixels((x0, y0, x1, y1), (1920, 1080)) == (384, 216, 960, 972)


def test_crop_of_a_wider_sub_stream_is_the_centre_rows():
    where = region((640, 360), (1280, 960), "crop")  # 16:9 inside 4:3
    assert where.h == pytest.approx(0.75) and where.y == pytest.approx(0.125)
    _, y0, _, y1 = to_main((0.0, 0.0, 1.0, 1.0), where)
    assert (y0, y1) == (pytest.approx(0.125), pytest.approx(0.875))


def test_unknown_sizes_map_nothing():
    assert region(None, (1920, 1080), "crop").whole
    assert region((640, 480), None, "crop").whole
    assert region((0, 480), (1920, 1080), "crop").whole


def test_mapped_boxes_stay_inside_the_picture():
    where = Region(x=0.125, w=0.75)
    assert to_main((-0.1, -0.2, 1.3, 1.1), where) == (pytest.approx(0.05), 0.0, 1.0, 1.0)


def test_canvas_gives_the_main_aspect():
    assert canvas_size((640, 480), (1920, 1080), Region()) == (640, 360)
    assert canvas_size((640, 480), (1920, 1080), region((640, 480), (1920, 1080), "crop")) \
        == (853, 480)
    assert canvas_size((640, 480), None, Region()) == (640, 480)
