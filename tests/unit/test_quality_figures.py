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
    ServiceEvent,
    Truth,
    TruthObject,
    Window,
    band_of,
    client_figures,
    event_figures,
    id_switches,
    place,
    refit,
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
    assert [band_of(h) for h in (60, 80, 99.9, 100, 119.9, 120, 199, 200, 400)] == \
        ["<80", "80-100", "80-100", "100-120", "100-120", "120-200", "120-200", ">=200", ">=200"]


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


def test_refit_moves_results_to_where_their_boxes_fit():
    # a person crossing fast (a box width per frame, frames 10-59): only the right frame fits
    boxes = tuple((100.0 + 40 * i, 100.0, 130.0 + 40 * i, 160.0) for i in range(50))
    truth = Truth(W * 3, H, FPS, 100, (TruthObject(0, "person", 10, 50, boxes),))
    results = [Result(0.0, seq, 0.0, [("person", 0.8, (boxes[seq - 10][0] / (3 * W),
                                                        0.2, boxes[seq - 10][2] / (3 * W),
                                                        0.32))], seq=seq - 4)
               for seq in range(10, 60, 5)]  # placed 4 frames early, as the service was
    assert refit(truth, results, Window(0, 99)) == 4
    assert [r.seq for r in results] == list(range(10, 60, 5))
    assert refit(truth, results, Window(0, 99)) == 0  # in place: stays


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


def seen(seq: int, *boxes: tuple[str, str, tuple]) -> Result:
    """The service's result for frame `seq` (decoded 0.25 s after it was sent): boxes as
    (object id, label, pixel box)."""
    decoded = 1000.0 + seq / FPS + 0.25
    return Result(decoded, seq, decoded + 0.05, [(label, 0.8, norm(box)) for _, label, box
                                                 in boxes],
                  seq=seq, object_ids=[oid for oid, _, _ in boxes])


def event(object_id: str, label: str, first: int, last: int,
          announced: float | None = None) -> ServiceEvent:
    return ServiceEvent(object_id, label, 1000.0 + first / FPS + 0.25,
                        1000.0 + last / FPS + 0.25, announced)


NOWHERE = (800.0, 50.0, 900.0, 100.0)  # no object there, ever


def scene() -> tuple[list[Result], list[ServiceEvent]]:
    """Two loops of TRUTH, the model called every 5th frame. Person 1 (10-59): one event.
    Car 1 (30-79): split in two (id b, then c from frame 55). Person 2 (110-159): ids d, e,
    d again (two tracks taking turns). Car 2 (130-179): never found. A false person (120-130,
    id f) and an event the bench got no boxes for (g)."""
    ids: dict[int, list[tuple[str, str, tuple]]] = {}
    for seq in range(10, 60, 5):
        ids.setdefault(seq, []).append(("a", "person", PERSON))
    for seq in range(30, 80, 5):
        ids.setdefault(seq, []).append(("b" if seq < 55 else "c", "car", CAR))
    for seq in range(110, 160, 5):
        ids.setdefault(seq, []).append(("e" if 130 <= seq < 140 else "d", "person", PERSON))
    for seq in range(120, 135, 5):
        ids.setdefault(seq, []).append(("f", "person", NOWHERE))
    results = [seen(seq, *boxes) for seq, boxes in sorted(ids.items())]
    events = [event("a", "person", 10, 55, announced=1000.0 + 10 / FPS + 0.3),
              event("b", "car", 30, 50), event("c", "car", 55, 75),
              event("d", "person", 110, 155), event("e", "person", 130, 135),
              event("f", "person", 120, 130), event("g", "car", 150, 150)]
    return results, events


def test_events_are_tied_to_objects_by_their_boxes():
    results, events = scene()
    figures = event_figures(TRUTH, events, results, Window(0, 199), sent_frames(200))
    assert figures["objects"] == 4 and figures["events"] == 7
    assert figures["events_per_object"] == 1.75
    # person 1: a; car 1: b and c; person 2: d and e; car 2: none (f is a person elsewhere,
    # g has no boxes: neither covers it although both overlap it in time)
    assert figures["covering_histogram"] == {"0": 1, "1": 1, "2": 2}
    assert figures["events_covering_each_object"] == 1.25
    assert figures["objects_without_event"] == 1
    assert figures["false_events"] == 1 and figures["events_without_boxes"] == 1
    assert figures["events_over_several_objects"] == 0
    # every first event starts with the frame the object appeared in, decoded 0.25 s later;
    # only a's `event` message was heard, 0.3 s after its first frame was sent
    assert figures["event_latency_s"]["first_seen"]["p50"] == pytest.approx(0.25)
    assert figures["event_latency_s"]["first_seen"]["count"] == 3
    assert figures["event_latency_s"]["announced"] == {"count": 1, "p50": 0.3, "p95": 0.3,
                                                       "max": 0.3}


def test_one_object_one_event():
    results, events = scene()
    one = [r for r in results if r.object_ids == ["a"]]
    figures = event_figures(TRUTH, events[:1], one, Window(0, 99), sent_frames(200))
    assert figures["objects"] == 2  # the person and the car of the first loop
    assert figures["covering_histogram"] == {"0": 1, "1": 1}
    assert figures["false_events"] == 0
    switches = id_switches(TRUTH, one, Window(0, 99))
    assert switches["switches"] == 0 and switches["objects_with_switches"] == 0


def test_a_track_jumping_between_objects_is_one_event_over_several():
    # id j follows the person (10-25), then sits on the car (30-40): one event, two objects
    results = [seen(seq, ("j", "person", PERSON)) for seq in range(10, 30, 5)]
    results += [seen(seq, ("j", "car", CAR)) for seq in range(30, 45, 5)]
    figures = event_figures(TRUTH, [event("j", "person", 10, 40)], results, Window(0, 99),
                            sent_frames(200))
    assert figures["events_over_several_objects"] == 1
    assert figures["covering_histogram"] == {"1": 2}


def test_tracker_id_switches_per_object():
    results, _ = scene()
    switches = id_switches(TRUTH, results, Window(0, 199))
    # car 1: b → c; person 2: d → e → d (d came back: two tracks on one person)
    assert switches["objects"] == 4 and switches["switches"] == 3
    assert switches["objects_with_switches"] == 2 and switches["per_object"] == 0.75
    assert switches["returned"] == 1
    # each switch came one model call (5 frames) after the last match: the tracker let go of
    # an object the model kept finding
    assert switches["gap_s"] == {"count": 3, "p50": 0.2, "p95": 0.2, "max": 0.2}


def test_a_duplicate_box_with_its_own_id_covers_the_object_too():
    # two boxes on the person in each frame, ids a and z: two events for one object; the id
    # followed per frame is the most confident box's (a, 0.8 against z's 0.6)
    results = []
    for seq in range(10, 60, 5):
        r = seen(seq, ("a", "person", PERSON), ("z", "person", (101.0, 99.0, 129.0, 161.0)))
        r.detections[1] = ("person", 0.6, r.detections[1][2])
        results.append(r)
    events = [event("a", "person", 10, 55), event("z", "person", 10, 55)]
    figures = event_figures(TRUTH, events, results, Window(0, 99), sent_frames(200))
    assert figures["covering_histogram"] == {"0": 1, "2": 1}
    assert id_switches(TRUTH, results, Window(0, 99))["switches"] == 0
