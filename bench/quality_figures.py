"""The arithmetic of bench/detect_quality.py: which frame a result is about, what it matched,
recall and precision per size band, events per object, latency. Plain data in, no I/O.

Frames: the camera logs when it sent each frame (`seq`, wall time; the clip's frame is
`seq % clip_frames`, the loop `seq // clip_frames`). A result is placed on that timeline by a
relative frame count (the service: its frame's PTS, 40 ms a frame; the naive peer: frames
read since it connected) plus one anchor for the whole run: each result proposes
`sent_before(when it was decoded) - relative count`, and the anchor is the most common
proposal (the service, whose jitter buffer holds frames back by the stream's `latency`,
subtracted first) or the smallest (the naive reader, which cannot read a frame before it was
sent). `mapping_within_1` says how many results agree with the anchor to a frame. The service's
results are then moved by the shift at which their boxes fit ground truth best (`refit`):
its jitter buffer does not in fact hold frames in order back.

Matching: a detection matches an object on screen in that frame if the labels agree, the
detection's centre lies inside the object's box and its height is 0.5-2x the object's. Each
object is matched at most once per frame (most confident first); a further match is a
duplicate, counted with the false positives. Size bands are by the object's box height.

Events (the service): each `detection` message names the tracked object (`object_id`) of
every box, and an event is one tracked object. So an event is tied to the ground-truth
objects its own boxes matched, frame by frame, not to whatever had the same label at the
same time: an event covers an object if any of its boxes matched it, an event whose boxes
matched nothing is a false event. Tracker id switches follow one ground-truth object through
the frames it was matched in and count how often the object id of its (most confident)
matching box changed: each switch is one more event for the same object.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

BANDS = (("<80", 0, 80), ("80-100", 80, 100), ("100-120", 100, 120), ("120-200", 120, 200),
         (">=200", 200, math.inf))  # the #14 goal is for people >= 100 px
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TruthObject:
    id: int
    label: str
    start: int
    frames: int
    boxes: tuple[Box, ...]  # frame pixels, one per frame from `start`

    @property
    def height(self) -> float:
        return self.boxes[0][3] - self.boxes[0][1]

    def box_at(self, frame: int) -> Box | None:
        i = frame - self.start
        return self.boxes[i] if 0 <= i < self.frames else None


@dataclass(frozen=True)
class Truth:
    width: int
    height: int
    fps: int
    frames: int
    objects: tuple[TruthObject, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Truth:
        return cls(data["width"], data["height"], data["fps"], data["frames"], tuple(
            TruthObject(o["id"], o["label"], o["start"], o["frames"],
                        tuple(tuple(b) for b in o["boxes"]))  # type: ignore[misc]
            for o in data["objects"]))


def band_of(height: float) -> str:
    return next(name for name, low, high in BANDS if low <= height < high)


# ---- when frames were sent ---------------------------------------------------------------------


@dataclass
class SentFrames:
    """The camera's log: frame `seq` left at `wall[i]` (seqs increase; a new media restarts)."""

    seqs: list[int]
    walls: list[float]

    def sent_before(self, when: float) -> int | None:
        i = bisect.bisect_right(self.walls, when) - 1
        return self.seqs[i] if i >= 0 else None

    def wall_of(self, seq: int) -> float | None:
        i = bisect.bisect_left(self.seqs, seq)
        return self.walls[i] if i < len(self.seqs) and self.seqs[i] == seq else None


@dataclass
class Result:
    """One model result: when its frame was decoded, a relative frame count, what it found."""

    decoded: float  # wall time the client had the frame
    relative: int  # frames since an arbitrary start, in camera frames
    known: float  # wall time the result was known to the consumer (latency)
    detections: list[tuple[str, float, Box]]  # label, score, box normalised 0-1
    seq: int | None = None  # set by `place`
    object_ids: list[str] | None = None  # the service: each detection's tracked object


def place(results: list[Result], sent: SentFrames, delay: float, method: str) -> float:
    """Give each result its camera `seq`; returns the share within one frame of the anchor."""
    proposals = []
    for r in results:
        before = sent.sent_before(r.decoded - delay)
        if before is not None:
            proposals.append((before - r.relative, r))
    if not proposals:
        return 0.0
    offsets = [p for p, _ in proposals]
    anchor = min(offsets) if method == "min" else Counter(offsets).most_common(1)[0][0]
    for r in results:
        r.seq = anchor + r.relative
    return sum(abs(p - anchor) <= 1 for p in offsets) / len(offsets)


def refit(truth: Truth, results: list[Result], window: Window,
          shifts: range = range(-5, 11)) -> int:
    """Move every placed result by the shift (frames) at which most of its boxes match ground
    truth, and return it; the smallest such shift on a tie.

    The service's anchor assumes its jitter buffer holds frames for the stream's `latency`,
    but rtpjitterbuffer only waits for missing packets: frames in order leave at once, so the
    assumed delay placed every result about 4 frames early. Objects that move and appear on
    known frames make the true shift the one where boxes fit best.
    """
    placed = [r for r in results if r.seq is not None]

    def fitting(shift: int) -> int:
        return sum(len(score_frame(truth, (r.seq + shift) % truth.frames, r.detections,
                                   0.0).found)
                   for r in placed if window.first <= r.seq + shift <= window.last)  # type: ignore[operator]

    best = max(shifts, key=lambda k: (fitting(k), -abs(k)))
    for r in placed:
        r.seq = r.seq + best  # type: ignore[operator]
    return best


# ---- matching -----------------------------------------------------------------------------------


def matches(box: Box, truth: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    height, truth_height = box[3] - box[1], truth[3] - truth[1]
    return (truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3]
            and 0.5 <= height / truth_height <= 2.0)


@dataclass
class FrameScore:
    found: set[int] = field(default_factory=set)  # object ids matched
    false_positives: int = 0
    duplicates: int = 0
    # detection index (in the order given) → the truth object it matched; duplicates too
    objects: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)  # truth object → its best detection


def score_frame(truth: Truth, frame: int, detections: list[tuple[str, float, Box]],
                min_score: float) -> FrameScore:
    on_screen = {o.id: (o, box) for o in truth.objects if (box := o.box_at(frame)) is not None}
    out = FrameScore()
    ranked = sorted(enumerate(detections), key=lambda item: -item[1][1])
    for index, (label, score, (x0, y0, x1, y1)) in ranked:
        if score < min_score:
            continue
        pixels = (x0 * truth.width, y0 * truth.height, x1 * truth.width, y1 * truth.height)
        hit = [oid for oid, (o, box) in on_screen.items()
               if o.label == label and matches(pixels, box)]
        fresh = [oid for oid in hit if oid not in out.found]
        if fresh:
            out.found.add(fresh[0])
            out.objects[index] = fresh[0]
            out.first[fresh[0]] = index
        elif hit:
            out.duplicates += 1
            out.objects[index] = hit[0]
        else:
            out.false_positives += 1
    return out


# ---- a client's figures -------------------------------------------------------------------------


@dataclass
class Window:
    """What was measured: camera seqs [first, last] and, if known, which the model saw."""

    first: int
    last: int
    seen_per_second: float | None = None  # the service: model calls per second (measured)


def appearances(truth: Truth, window: Window) -> list[tuple[TruthObject, int]]:
    """(object, loop) for each object whose whole appearance lies inside the window."""
    out = []
    for loop in range(window.first // truth.frames, window.last // truth.frames + 1):
        base = loop * truth.frames
        out += [(o, loop) for o in truth.objects
                if base + o.start >= window.first and base + o.start + o.frames - 1 <= window.last]
    return out


def client_figures(truth: Truth, results: list[Result], window: Window, sent: SentFrames,
                   min_score: float, *, exact_samples: bool) -> dict[str, Any]:
    """Recall and precision per label and size band, false positives, first-detection latency.

    `exact_samples`: every frame the model looked at is a result (the naive peer logs empty
    calls too). Otherwise (the service reports only frames with detections) an object's
    chances are its time on screen times the model's measured call rate.
    """
    inside = [r for r in results if r.seq is not None and window.first <= r.seq <= window.last]
    found: dict[tuple[int, int], int] = Counter()
    first_found: dict[tuple[int, int], float] = {}
    false_positives = duplicates = 0
    for r in inside:
        assert r.seq is not None
        loop, frame = divmod(r.seq, truth.frames)
        scored = score_frame(truth, frame, r.detections, min_score)
        false_positives += scored.false_positives
        duplicates += scored.duplicates
        for oid in scored.found:
            found[(oid, loop)] += 1
            first_found.setdefault((oid, loop), r.known)
    rows: dict[tuple[str, str], dict[str, float]] = {}
    latencies = []
    for obj, loop in appearances(truth, window):
        base = loop * truth.frames
        if exact_samples:
            chances = sum(1 for r in inside if r.seq is not None
                          and base + obj.start <= r.seq < base + obj.start + obj.frames)
        else:
            chances = obj.frames / truth.fps * (window.seen_per_second or 0.0)
        row = rows.setdefault((obj.label, band_of(obj.height)),
                              {"objects": 0, "chances": 0.0, "found": 0, "missed_entirely": 0})
        row["objects"] += 1
        row["chances"] += chances
        row["found"] += min(found[(obj.id, loop)], chances) if chances else 0
        row["missed_entirely"] += found[(obj.id, loop)] == 0
        appeared = sent.wall_of(base + obj.start)
        if (obj.id, loop) in first_found and appeared is not None:
            latencies.append(first_found[(obj.id, loop)] - appeared)
    true_positives = sum(found.values())
    return {
        "bands": [{"label": label, "band": band, **{k: round(v, 1) for k, v in row.items()},
                   "recall": round(row["found"] / row["chances"], 3) if row["chances"] else None}
                  for (label, band), row in sorted(rows.items(), key=_band_order)],
        "results": len(inside),
        "true_positives": true_positives,
        "false_positives": false_positives,
        "duplicates": duplicates,
        "precision": round(true_positives / (true_positives + false_positives + duplicates), 3)
        if true_positives + false_positives + duplicates else None,
        "first_detection_latency_s": _spread(latencies),
    }


def _band_order(item: tuple[tuple[str, str], Any]) -> tuple[str, int]:
    (label, band), _ = item
    return (label != "person", [b[0] for b in BANDS].index(band))


def _spread(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"count": len(values), "p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2)}


# ---- events and tracker ids (the service) -------------------------------------------------------


@dataclass(frozen=True)
class ServiceEvent:
    """One event as `GET /events` lists it (one tracked object), and when `/ws` told of it."""

    object_id: str
    label: str
    start: float  # first seen: the wall time the service had the frame it was first seen in
    end: float  # last seen
    announced: float | None = None  # the `event` message (change "new") arrived at the bench


ObjectKey = tuple[int, int]  # (truth object id, loop): one appearance of an object


@dataclass
class Sightings:
    """The service's boxes tied to ground truth: which appearances each tracked object's boxes
    matched, and which tracked object each appearance was seen as, frame by frame."""

    by_event: dict[str, Counter[ObjectKey]] = field(default_factory=dict)  # boxes matched
    boxes: Counter[str] = field(default_factory=Counter)  # object id → boxes placed
    by_object: dict[ObjectKey, list[tuple[int, str]]] = field(default_factory=dict)  # seq, id


def sightings(truth: Truth, results: list[Result]) -> Sightings:
    """Every placed result with object ids, scored frame by frame (no confidence floor: the
    service sent only what passed its own)."""
    out = Sightings()
    for r in sorted((r for r in results if r.seq is not None and r.object_ids), key=_seq):
        assert r.seq is not None and r.object_ids is not None
        loop, frame = divmod(r.seq, truth.frames)
        scored = score_frame(truth, frame, r.detections, 0.0)
        for index, object_id in enumerate(r.object_ids):
            out.boxes[object_id] += 1
            matched = out.by_event.setdefault(object_id, Counter())
            if index in scored.objects:
                matched[(scored.objects[index], loop)] += 1
        for oid, index in scored.first.items():
            out.by_object.setdefault((oid, loop), []).append((r.seq, r.object_ids[index]))
    return out


def _seq(result: Result) -> int:
    return result.seq if result.seq is not None else -1


def event_figures(truth: Truth, events: list[ServiceEvent], results: list[Result],
                  window: Window, sent: SentFrames) -> dict[str, Any]:
    """Events against the objects shown whole in the window, through their boxes.

    Per object: the events whose boxes matched it (ideal 1) and the latency from the frame
    it appeared in (sent by the camera) to its first event: `first_seen` (the event's start,
    the wall time of its first frame in the service) and `announced` (the `event` message's
    arrival on the WebSocket). Events that started inside the window: those whose boxes
    matched nothing (false events), matched several objects (a track that jumped), or have
    no box in the `detection` messages at all (the bench missed them).
    """
    seen = sightings(truth, results)
    first, last = sent.wall_of(window.first), sent.wall_of(window.last)
    in_window = [e for e in events
                 if first is not None and last is not None and first <= e.start <= last]
    covering: list[int] = []
    first_seen, announced = [], []
    for obj, loop in appearances(truth, window):
        mine = sorted((e for e in events
                       if (obj.id, loop) in seen.by_event.get(e.object_id, ())),
                      key=lambda e: e.start)
        covering.append(len(mine))
        appeared = sent.wall_of(loop * truth.frames + obj.start)
        if mine and appeared is not None:
            first_seen.append(mine[0].start - appeared)
            if mine[0].announced is not None:
                announced.append(mine[0].announced - appeared)
    matched = [len(seen.by_event.get(e.object_id, ())) for e in in_window]
    boxed = [seen.boxes[e.object_id] > 0 for e in in_window]
    return {
        "objects": len(covering), "events": len(in_window),
        "events_per_object": round(len(in_window) / len(covering), 2) if covering else None,
        "events_covering_each_object": round(statistics.mean(covering), 2)
        if covering else None,
        "covering_histogram": {str(n): c for n, c in sorted(Counter(covering).items())},
        "objects_without_event": sum(1 for n in covering if n == 0),
        "false_events": sum(1 for n, b in zip(matched, boxed, strict=True) if b and n == 0),
        "events_over_several_objects": sum(1 for n in matched if n >= 2),
        "events_without_boxes": sum(1 for b in boxed if not b),
        "event_latency_s": {"first_seen": _spread(first_seen),
                            "announced": _spread(announced)},
    }


def id_switches(truth: Truth, results: list[Result], window: Window) -> dict[str, Any]:
    """How often the object id of each shown object's matching box changed, frame by frame.

    Each switch says how long the object had gone unmatched before it (`gap_s`: one model
    call's interval means the tracker let go of an object the model kept finding) and
    whether the id it left came back on the same object later (`returned`: two tracks on
    one object, taking turns).
    """
    seen = sightings(truth, results)
    per_object, gaps = [], []
    returned = 0
    for obj, loop in appearances(truth, window):
        seq_ids = seen.by_object.get((obj.id, loop), [])
        switches = 0
        for i in range(1, len(seq_ids)):
            (before, old), (now, new) = seq_ids[i - 1], seq_ids[i]
            if new != old:
                switches += 1
                gaps.append((now - before) / truth.fps)
                returned += any(oid == old for _, oid in seq_ids[i + 1:])
        per_object.append(switches)
    return {"objects": len(per_object), "switches": sum(per_object),
            "objects_with_switches": sum(1 for n in per_object if n),
            "per_object": round(statistics.mean(per_object), 2) if per_object else None,
            "gap_s": _spread(gaps), "returned": returned}
