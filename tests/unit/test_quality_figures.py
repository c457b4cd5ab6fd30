"""The detection-quality benchmark's arithmetic (bench/quality_figures.py) on hand-made data:
placing results on the camera's frames, matching boxes, recall per size band, events."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from quality_figures import (  # bench/ is not a package: on the path above
    Result,
    SentFrames,
    Truth,
    TruthObject,
    Window,
    band_of,
    client_figures,
    event_figures,
    place,
    score_frame,
)

FPS = 25
W, H = 1000, 500


def still(oid: int, label: str, box: tuple, start: int, frames: int) -> TruthObject:
    return TruthObject(oid, label, start, frames, tuple([box] * frames))


# a 100-frame clip: a 60 px person in frames 10-59, a 150 px car in frames 30-79
PERSON = (100.0, 100.0, 130.0, 160.0)
CAR = (500.0, 200.0, 700.0, 350.0)
TRUTH = Truth(W, H, FPS, 100, (still(0, "person", PERSON, 10, 50),
                               still(1, "car", CAR, 30, 50)))


def norm(box: tuple) -> tuple:
    return (box[0] / W, box[1] / H, box[2] / W, box[3] / H)


def sent_frames(count: int, t0: float = 1000.0) -> SentFrames:
    return SentFrames(list(range(count)), [t0 + i / FPS for i in range(count)])


def test_bands():
    assert [band_of(h) for h in (60, 80, 119.9, 120, 199, 200, 400)] == \
        ["<80", "80-120", "80-120", "120-200", "120-200", ">=200", ">=200"]


def test_placing_service_results_by_pts_and_a_common_anchor():
    sent = sent_frames(300)
    # frames 40, 45, 50, ... decoded 0.2 s (jitter buffer) + 5-30 ms after they were sent;
    # one result held up 0.3 s more (a busy machine), one out 10 ms early (clock skew): the
    # anchor is what most agree on (the smallest proposal would be one frame off)
    results = []
    for i, seq in enumerate(range(40, 140, 5)):
        late = {7: 0.3, 3: -0.015 - 0.025}.get(i, 0.0)
        decoded = 1000.0 + seq / FPS + 0.2 + 0.005 + 0.025 * (i % 2) + late
        results.append(Result(decoded, seq - 40, decoded + 0.05, []))
    share = place(results, sent, delay=0.2, method="mode")
    assert [r.seq for r in results] == list(range(40, 140, 5))
    assert share == pytest.approx(19 / 20)


def test_placing_naive_results_by_frames_read_and_the_smallest_anchor():
    sent = sent_frames(300)
    # read counts from 1 at seq 17; the reader falls behind more and more after a while
    results = [Result(1000.0 + (17 + n) / FPS + 0.01 + max(0, n - 50) * 0.02, n, 0.0, [])
               for n in range(0, 150, 5)]
    place(results, sent, delay=0.0, method="min")
    assert [r.seq for r in results] == [17 + n for n in range(0, 150, 5)]


def test_score_frame_matches_once_per_object_and_counts_the_rest():
    detections = [
        ("person", 0.9, norm((98, 95, 132, 165))),   # the person
        ("person", 0.8, norm((101, 99, 129, 161))),  # the same person again: a duplicate
        ("person", 0.7, norm((510, 210, 690, 340))),  # on the car, wrong label: false
        ("car", 0.6, norm((505, 205, 695, 345))),    # the car
        ("car", 0.5, norm((800, 50, 900, 100))),     # nothing there: false
        ("car", 0.2, norm((100, 100, 130, 160))),    # below the threshold: not counted
        ("person", 0.9, norm((100, 0, 130, 300))),   # centre inside but 5x too tall: false
    ]
    scored = score_frame(TRUTH, 40, detections, min_score=0.3)
    assert scored.found == {0, 1}
    assert scored.duplicates == 1 and scored.false_positives == 3
    assert score_frame(TRUTH, 5, detections[:1], 0.3).false_positives == 1  # not on screen yet


def test_client_figures_exact_and_estimated_chances():
    sent = sent_frames(200)
    # the model looks at every 5th frame; finds the person from frame 20 on, the car never
    results = [Result(1000.0 + seq / FPS, seq, 1000.0 + seq / FPS + 0.1,
                      [("person", 0.8, norm(PERSON))] if 20 <= seq < 60 else [], seq=seq)
               for seq in range(0, 100, 5)]
    exact = client_figures(TRUTH, results, Window(0, 99), sent, 0.5, exact_samples=True)
    person, car = exact["bands"]
    assert (person["label"], person["band"], person["chances"], person["found"]) == \
        ("person", "<80", 10, 8)
    assert person["recall"] == 0.8 and person["missed_entirely"] == 0
    assert (car["label"], car["band"], car["recall"], car["missed_entirely"]) == \
        ("car", "120-200", 0.0, 1)
    assert exact["precision"] == 1.0 and exact["true_positives"] == 8
    # first seen at frame 20, 10 frames (0.4 s) after it appeared, known 0.1 s later
    assert exact["first_detection_latency_s"]["p50"] == pytest.approx(0.5)
    # the service reports frames with detections only: chances from 5 calls a second
    reported = [r for r in results if r.detections]
    estimated = client_figures(TRUTH, reported, Window(0, 99, seen_per_second=5.0), sent, 0.5,
                               exact_samples=False)
    assert estimated["bands"][0]["chances"] == 10 and estimated["bands"][0]["recall"] == 0.8


def test_objects_partly_outside_the_window_are_left_out():
    figures = client_figures(TRUTH, [], Window(35, 199), sent_frames(200), 0.5,
                             exact_samples=True)
    # the first loop's person (10-59) and car (30-79) started before 35; the second loop's
    # person (110-159) and car (130-179) are inside
    assert [(b["label"], b["objects"]) for b in figures["bands"]] == [("person", 1), ("car", 1)]


def test_events_against_objects():
    sent = sent_frames(200)
    t = lambda seq: 1000.0 + seq / FPS  # noqa: E731
    events = [("person", t(12), t(30)), ("person", t(35), t(61)),  # the person split in two
              ("car", t(32), t(80)),
              ("car", t(150), t(160))]                             # the second loop's car
    figures = event_figures(TRUTH, events, Window(0, 199), sent)
    assert figures["objects"] == 4 and figures["events"] == 4
    assert figures["events_per_object"] == 1.0
    # person 1: 2 events; car 1: 1; person 2 (110-159): none; car 2: 1
    assert figures["events_covering_each_object"] == 1.0
    assert figures["objects_without_event"] == 1
