"""Combining the widened and the whole-frame pass (detectors/scales.py) on hand-made boxes."""

from __future__ import annotations

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.scales import LARGE, combine_scales


def person(x0: float, y0: float, x1: float, y1: float, score: float = 0.8) -> Detection:
    return Detection("person", score, (x0, y0, x1, y1))


def test_the_whole_frame_pass_adds_only_large_objects():
    small_far = person(0.1, 0.4, 0.12, 0.45, 0.9)  # 5 % tall: the background's texture
    tall = person(0.5, 0.1, 0.6, 0.1 + LARGE + 0.05)
    assert combine_scales([], [small_far, tall], iou=0.45) == [tall]


def test_an_object_both_passes_found_is_reported_once_with_the_better_box():
    fine = person(0.5, 0.1, 0.6, 0.5, 0.6)
    coarse = person(0.5, 0.11, 0.61, 0.5, 0.9)
    assert combine_scales([fine], [coarse], iou=0.45) == [coarse]


def test_labels_are_suppressed_apart_and_the_result_is_best_first():
    car = Detection("car", 0.7, (0.5, 0.1, 0.6, 0.5))
    walker = person(0.5, 0.1, 0.6, 0.5, 0.9)
    other = person(0.0, 0.0, 0.1, 0.1, 0.4)
    assert combine_scales([car, other], [walker], iou=0.45) == [walker, car, other]
