"""Zones and masks without a pipeline: polygon validity, where a box stands, selectors, mask
rasters, and the config's messages for bad polygons and unknown zone names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamwarden.config.loader import ConfigError, parse_config
from streamwarden.inference.geometry import Area, anchor, iou, polygon_problem
from streamwarden.inference.zones import Scene, Selector, any_match

SQUARE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]
BOW_TIE = [(0.2, 0.2), (0.6, 0.6), (0.6, 0.2), (0.2, 0.6)]
RIGHT_HALF = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


def test_valid_polygons_pass_and_bad_ones_say_why():
    assert polygon_problem(SQUARE) is None
    assert polygon_problem([(0, 0), (1, 0), (0, 1)]) is None  # corners of the frame are in
    assert "at least 3 points" in polygon_problem([(0, 0), (1, 1)])
    assert "self-intersecting" in polygon_problem(BOW_TIE)
    out = polygon_problem([(0.1, 0.1), (1.2, 0.1), (0.5, 0.9)])
    assert "point 1 [1.2, 0.1] is outside the frame" in out
    assert "outside the frame" in polygon_problem([(0.1, -0.01), (0.5, 0.1), (0.5, 0.9)])
    assert "outside the frame" in polygon_problem([(0.1, math.nan), (0.5, 0.1), (0.5, 0.9)])
    assert "no area" in polygon_problem([(0.1, 0.1), (0.3, 0.3), (0.5, 0.5)])
    assert "[x, y]" in polygon_problem([(0.1, 0.1, 0.2), (0.3, 0.3), (0.5, 0.5)])


def test_an_object_stands_at_the_bottom_centre_of_its_box():
    assert anchor((0.1, 0.2, 0.3, 0.9)) == pytest.approx((0.2, 0.9))
    scene = Scene([("driveway", RIGHT_HALF), ("square", SQUARE)])
    # a tall box whose top reaches into the right half but whose feet stand left of it
    assert scene.place((0.3, 0.1, 0.45, 0.5)).zones == ("square",)
    assert scene.place((0.55, 0.1, 0.8, 0.9)).zones == ("driveway",)
    assert scene.place((0.0, 0.7, 0.2, 0.9)).zones == ()  # outside every zone
    # on the edge counts as in: a box resting on the frame's bottom edge, a zone drawn to it
    assert scene.place((0.6, 0.5, 0.8, 1.0)).zones == ("driveway",)
    assert scene.place((0.1, 0.1, 0.3, 0.5)).zones == ("square",)  # feet at (0.2, 0.5)


def test_a_mask_drops_what_stands_in_it():
    scene = Scene([("driveway", RIGHT_HALF)], masks=[SQUARE])
    inside = scene.place((0.3, 0.1, 0.5, 0.4))  # feet at (0.4, 0.4): in the mask
    assert inside.masked and inside.zones == ()
    assert not scene.place((0.3, 0.5, 0.5, 0.8)).masked  # feet at (0.4, 0.8)
    assert not Scene().place((0.3, 0.1, 0.5, 0.4)).masked


def test_mask_raster_covers_pixel_centres_inside():
    raster = Area([RIGHT_HALF]).raster(8, 4)
    assert raster.shape == (4, 8) and raster[:, 4:].all() and not raster[:, :4].any()
    assert not Area([]).raster(8, 4).any()
    square = Area([SQUARE]).raster(10, 10)
    assert square.sum() == 16 and square[2:6, 2:6].all()


def test_iou():
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert iou((0, 0, 0.4, 0.4), (0.2, 0, 0.6, 0.4)) == pytest.approx(1 / 3)


def test_selectors():
    person_in_drive = Selector.parse("person@driveway")
    assert person_in_drive == Selector("person", "driveway")
    assert person_in_drive.matches("person", ("driveway", "porch"))
    assert not person_in_drive.matches("person", ("porch",))
    assert not person_in_drive.matches("car", ("driveway",))
    assert Selector.parse("car").matches("car", ())
    assert Selector.parse("*@porch").matches("dog", ("porch",))
    assert Selector.parse("traffic light") == Selector("traffic light", None)
    assert any_match([Selector.parse("car"), person_in_drive], "person", ["driveway"])
    for bad in ("@driveway", "person@", "person@drive way", "  "):
        with pytest.raises(ValueError):
            Selector.parse(bad)


STREAM = """
[[streams]]
id = "front"
uri = "rtsp://127.0.0.1:9/x"
{extra}
"""


def issues(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml")
    return [(i.key, i.message) for i in info.value.issues]


def test_config_zones_and_masks_load():
    config = parse_config(STREAM.format(extra="""
zones = [{ name = "driveway", points = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]] }]
masks = [[[0, 0], [0.35, 0], [0.35, 0.07], [0, 0.07]]]
record_on = ["person@driveway", "car"]
""") + '[inference]\nrecord_on = ["*@driveway"]\n[mqtt]\nhost = "h"\n'
        'objects = ["person@driveway"]\n', "t.toml")
    stream = config.streams[0]
    assert stream.zones[0].name == "driveway" and len(stream.zones[0].points) == 4
    assert stream.masks[0][1] == (0.35, 0.0)
    assert stream.record_on == ["person@driveway", "car"]
    assert config.inference.record_on == ["*@driveway"]
    assert config.mqtt is not None and config.mqtt.objects == ["person@driveway"]
    assert parse_config(STREAM.format(extra=""), "t.toml").streams[0].record_on is None


def test_config_refuses_bad_polygons_with_their_key():
    found = issues(STREAM.format(extra="""
zones = [{ name = "a", points = [[0.2, 0.2], [0.6, 0.6], [0.6, 0.2], [0.2, 0.6]] },
         { name = "b", points = [[0, 0], [1.5, 0], [1, 1]] }]
masks = [[[0, 0], [0.5, 0]]]
"""))
    assert ("streams[0].zones[0].points", "the polygon's edges cross each other "
            "(self-intersecting): list its points in order around its outline") in found
    assert any(key == "streams[0].zones[1].points" and "outside the frame" in message
               for key, message in found)
    assert any(key == "streams[0].masks[0]" and "at least 3 points" in message
               for key, message in found)


def test_config_refuses_unknown_zone_names_and_duplicates():
    square = "[[0, 0], [1, 0], [1, 1], [0, 1]]"
    found = issues(STREAM.format(extra=f"""
zones = [{{ name = "driveway", points = {square} }}]
record_on = ["person@drivway"]
"""))
    assert any("record_on 'person@drivway': no zone 'drivway' on this stream (zones: driveway)"
               in message for _, message in found), found
    found = issues(STREAM.format(extra=f"""
zones = [{{ name = "d", points = {square} }}, {{ name = "d", points = {square} }}]
"""))
    assert any("zone 'd' is defined twice" in message for _, message in found)
    found = issues(STREAM.format(extra="") + '[inference]\nrecord_on = ["car@street"]\n')
    assert any("[inference] record_on 'car@street': no zone 'street' on any stream"
               in message for _, message in found), found
    found = issues(STREAM.format(extra="") + '[mqtt]\nhost = "h"\nobjects = ["car@x"]\n')
    assert any("[mqtt] objects 'car@x'" in message for _, message in found), found
    found = issues(STREAM.format(extra='zones = [{ name = "no spaces", points = '
                                       f'{square} }}]'))
    assert any(key == "streams[0].zones[0].name" for key, _ in found), found


def test_the_raster_is_cheap_enough_per_mask_change():
    """Rasterised once per thumbnail size and mask change, never per frame."""
    area = Area([SQUARE, RIGHT_HALF])
    raster = area.raster(64, 36)
    assert raster.dtype == np.bool_ and 0 < raster.mean() < 1


def test_mqtt_objects_limit_detections_and_events_to_their_zones():
    from streamwarden.inference.zones import parse_selectors
    from streamwarden.mqtt import select

    selectors = parse_selectors(["person@driveway", "car"])
    detection = {"type": "detection", "stream_id": "cam", "detections": [
        {"label": "person", "zones": []}, {"label": "person", "zones": ["driveway"]},
        {"label": "car", "zones": []}, {"label": "dog", "zones": ["driveway"]}]}
    kept = select(detection, selectors)
    assert kept is not None and [(d["label"], d["zones"]) for d in kept["detections"]] == [
        ("person", ["driveway"]), ("car", [])]
    assert select({**detection, "detections": [{"label": "dog", "zones": []}]},
                  selectors) is None
    walker = {"type": "event", "label": "person", "zones": []}
    assert select(walker, selectors) is None, "not (yet) in the driveway"
    entered = {**walker, "zones": [{"zone": "driveway", "entered": 1.0}]}
    assert select(entered, selectors) == entered
    state = {"type": "state", "stream_id": "cam"}
    assert select(state, selectors) == state and select(walker, None) == walker
