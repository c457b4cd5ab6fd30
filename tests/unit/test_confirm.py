"""The event-confirmation rule on hand-made scores: the median of an object's recent scores,
padded with zeros to three, must reach `event_score`; once confirmed, always confirmed."""

from __future__ import annotations

import itertools

import pytest

from streamwarden.inference.confirm import (
    HISTORY,
    Confirmation,
    builtin_event_score,
    median_score,
)

# The person scores INT8 NanoDet-g gives the test camera's timeoverlay clock (astronaut clip,
# the calls at 5 fps of one 4 s loop that pass confidence 0.35; measured, see docs/architecture)
CLOCK_INT8 = [0.37, 0.40, 0.37, 0.37, 0.40, 0.35, 0.35, 0.42, 0.37, 0.39, 0.40]


def confirmed_at(threshold: float, scores: list[float]) -> int | None:
    """The 1-based sighting that confirms, or None."""
    rule = Confirmation(threshold)
    hits = [i for i, score in enumerate(scores, 1) if rule.add(score)]
    assert len(hits) <= 1, "confirmed once"
    return hits[0] if hits else None


def test_the_median_is_padded_with_zeros_to_three():
    assert median_score([]) == 0.0
    assert median_score([0.9]) == 0.0
    assert median_score([0.9, 0.5]) == 0.5
    assert median_score([0.9, 0.5, 0.1]) == 0.5
    assert median_score([0.9, 0.5, 0.1, 0.2]) == pytest.approx(0.35)


def test_one_sighting_is_never_an_event_however_confident():
    assert confirmed_at(0.45, [0.99]) is None
    assert confirmed_at(0.45, [0.99, 0.2]) is None  # the second must reach the score too


def test_a_person_is_confirmed_on_the_second_call():
    assert confirmed_at(0.45, [0.62, 0.71, 0.8]) == 2
    assert confirmed_at(0.45, [0.5, 0.3, 0.6]) == 3  # two of the first three


def test_a_weak_start_is_confirmed_once_most_recent_scores_are_strong():
    # a person walking in from far: 0.36, 0.38 (tracked, not an event), then closer
    assert confirmed_at(0.45, [0.36, 0.38, 0.6, 0.7, 0.8]) == 4  # median(.36,.38,.6,.7)=.49


def test_the_int8_clock_overlay_never_becomes_an_event():
    flicker = list(itertools.islice(itertools.cycle(CLOCK_INT8), 500))
    assert confirmed_at(builtin_event_score("int8"), flicker) is None
    assert confirmed_at(0.35, flicker) == 2  # what confidence alone (fp32's score) lets out


def test_once_confirmed_an_object_stays_confirmed():
    rule = Confirmation(0.45)
    assert [rule.add(s) for s in (0.7, 0.7)] == [False, True]
    assert [rule.add(0.36) for _ in range(30)] == [False] * 30  # turned away, in shadow
    assert rule.confirmed


def test_the_history_is_bounded():
    rule = Confirmation(0.99)
    for _ in range(100):
        rule.add(0.5)
    assert len(rule.scores) == HISTORY and not rule.confirmed


def test_score_zero_confirms_at_the_first_sighting():
    assert confirmed_at(0.0, [0.36]) == 1


def test_the_builtin_defaults_per_precision():
    assert builtin_event_score("int8") > max(CLOCK_INT8)
    assert builtin_event_score("fp32") <= builtin_event_score("int8")
    assert builtin_event_score("something") == builtin_event_score("fp32")
