"""From per-frame detections to what users look at: tracked objects, events, pictures, pushes,
recordings.

Runs on the inference monitor thread for every frame result. Per stream, detections standing
in a mask are dropped (geometry at the box's bottom centre, inference/zones.py), the rest go
through the stream's tracker (inference/tracker.py), and the object book
(inference/objects.py) says which objects are new, changed or gone. One *event* per object
its scores confirmed (inference/confirm.py: the median of its recent scores reaches
`event_score`): its row is opened when the object is confirmed, starting when it was first
seen (its path and zones from then on), updated while it is tracked (last seen, path,
zones entered, stationary) and closed when it has left; its picture (JPEG, boxes drawn) is
its best sighting's. An object not (yet) confirmed opens no row, sends no `event` message,
starts no recording and is not counted. Every frame with detections is pushed on the
WebSocket (`detection`, with each box's object id, zones and `confirmed`: the live view
shows what the model sees, the Home Assistant sensors count confirmed boxes only); each
event's new/update/end is an `event` message
(event_store.py), which hooks and webhooks know as `event_start`, `event_update` (a zone
entered, stationary or moving again, a better picture) and `event_end`. An object matching
`record_on` (`label` or `label@zone`) starts or extends an event recording with pre- and
post-roll, unless it is stationary: a parked car is one event, not hours of footage.

An object ends when it was not seen for `event_gap` (`stationary_timeout` while stationary),
or when its stream sent no result for `event_gap` (a camera gone dark, inference turned off:
nothing can say a parked car is still there), or when its stream is removed. A stream that
sends no results cannot notice that itself, so `expire` is called every second by the
service, from another thread: the trackers and object books are guarded by one lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.event_store import EventState, EventStore, RowId
from streamwarden.inference.objects import Change, ObjectBook, Sighting, TrackedObject
from streamwarden.inference.runner import FrameResult
from streamwarden.inference.tracker import NorfairTracker, Tracker
from streamwarden.inference.zones import Scene, Selector, any_match, parse_selectors
from streamwarden.pixels.draw import draw_detections, encode_jpeg

log = logging.getLogger("streamwarden.inference")

WRITE_EVERY_S = 1.0  # a tracked object's row is brought up to date at most this often


@dataclass
class LatestDetections:
    seq: int
    wall: float
    detections: list[Detection]


@dataclass(frozen=True)
class StreamRules:
    """What a stream's zones, masks and record_on say, compiled once per change."""

    scene: Scene
    record_on: tuple[Selector, ...]


class _Picture:
    """The frame's picture with its boxes, drawn at most once and only if someone needs it."""

    def __init__(self, draw: Callable[[], bytes | None]):
        self._draw = draw
        self._drawn = False
        self._value: bytes | None = None

    def get(self) -> bytes | None:
        if not self._drawn:
            self._value, self._drawn = self._draw(), True
        return self._value


class _StreamObjects:
    def __init__(self, tracker: Tracker, book: ObjectBook):
        self.tracker = tracker
        self.book = book
        self.rows: dict[str, RowId] = {}  # object id → its event row
        self.written: dict[str, float] = {}  # object id → when its row was last updated


class EventLog:
    def __init__(self, db: Database, *, model_name: Callable[[], str], event_gap: float,
                 classes: list[str] | None, record_on: Sequence[str],
                 frame_lookup: Callable[[str, int], np.ndarray | None],
                 publish: Callable[[dict], None],
                 record: Callable[[str], None], fps: float = 5.0,
                 stationary_after: float = 10.0, stationary_timeout: float = 300.0,
                 event_score: float = 0.0):
        self.model_name = model_name
        self.event_gap = event_gap
        self.event_score = event_score  # 0: every tracked object is an event at once
        self.stationary_after = stationary_after
        self.stationary_timeout = stationary_timeout
        self.fps = fps
        self.classes = set(classes) if classes else None
        self.record_on = parse_selectors(record_on)
        self.frame_lookup = frame_lookup
        self.publish = publish
        self.record = record
        self.store = EventStore(db, publish)
        self._streams: dict[str, _StreamObjects] = {}
        self._rules: dict[str, StreamRules] = {}
        self._latest: dict[str, LatestDetections] = {}
        self._tracking: dict[str, int] = {}  # confirmed objects tracked per stream, for stats
        self._lock = threading.Lock()
        # trackers, books and rows: changed by results (monitor thread), `expire` and
        # `forget` (other threads)
        self._events_lock = threading.Lock()
        # stream -> wall time of its latest idle keyframe left undecoded (`unchanged`)
        self._unchanged: dict[str, float] = {}
        self.events_opened = 0

    # ---- configuration (any thread) --------------------------------------------------------

    def configure(self, stream_id: str, scene: Scene, record_on: Sequence[str] | None) -> None:
        """A stream's zones, masks or record_on (None: the global list) changed, in place."""
        selectors = self.record_on if record_on is None else parse_selectors(record_on)
        self._rules[stream_id] = StreamRules(scene, selectors)

    def rules(self, stream_id: str) -> StreamRules:
        return self._rules.get(stream_id) or StreamRules(Scene(), self.record_on)

    # ---- results (monitor thread) ----------------------------------------------------------

    def handle(self, result: FrameResult) -> None:
        with self._events_lock:
            self._handle(result)

    def unchanged(self, stream_id: str, wall: float) -> None:
        """The decoder left an idle keyframe undecoded (the same still picture): for the
        tracked objects a frame the motion gate skipped. Called on the camera's streaming
        thread, so it only notes the time (no lock, no database); `expire`, a second later at
        most, applies it before judging who has left."""
        self._unchanged[stream_id] = wall

    def _handle(self, result: FrameResult) -> None:
        stream = self._stream(result.stream_id)
        if not result.called:  # the motion gate skipped it: nothing moved
            stream.book.unchanged(result.wall)
            self._write_ended(result.stream_id, stream, stream.book.expire(result.wall))
            return
        rules = self.rules(result.stream_id)
        visible = [(det, placed.zones) for det in result.detections
                   if self.classes is None or det.label in self.classes
                   if not (placed := rules.scene.place(det.box)).masked]
        zones_of = {id(det): zones for det, zones in visible}
        sightings = [Sighting(track_id, det, zones_of[id(det)]) for track_id, det
                     in stream.tracker.update([det for det, _ in visible])]
        changes = stream.book.observe(result.wall, sightings)
        tracked = [(s, stream.book.object(s.track_id)) for s in sightings]
        with self._lock:
            self._latest[result.stream_id] = LatestDetections(
                result.seq, result.wall, [s.detection for s in sightings])
        if tracked:
            self._publish_detections(result, tracked)
        self._write(result, stream, changes, tracked)
        self._record(result.stream_id, rules, tracked)
        self._tracking[result.stream_id] = len(stream.book.confirmed)

    def expire(self, now: float | None = None) -> None:
        """End the objects of every stream that have left, or whose stream sent nothing for
        `event_gap` (a camera gone dark, inference off: no result would ever tell). The
        service calls this every second (any thread)."""
        now = time.time() if now is None else now
        with self._events_lock:
            for stream_id in list(self._unchanged):
                wall = self._unchanged.pop(stream_id, None)
                if wall is not None:
                    self._handle(FrameResult(stream_id, -1, 0, wall, [], 0.0, called=False,
                                             skipped=0))
            for stream_id, stream in list(self._streams.items()):
                ended = stream.book.expire(now)
                if ended:
                    self._write_ended(stream_id, stream, ended)
                    self._tracking[stream_id] = len(stream.book.confirmed)

    def _stream(self, stream_id: str) -> _StreamObjects:
        stream = self._streams.get(stream_id)
        if stream is None:
            memory = max(2, round(self.event_gap * self.fps))  # frames, as the tracker counts
            stream = _StreamObjects(
                NorfairTracker(memory),
                ObjectBook(lost_after=self.event_gap, stationary_after=self.stationary_after,
                           stationary_timeout=self.stationary_timeout,
                           event_score=self.event_score))
            self._streams[stream_id] = stream
        return stream

    def _publish_detections(self, result: FrameResult,
                            tracked: list[tuple[Sighting, TrackedObject]]) -> None:
        self.publish({"type": "detection", "stream_id": result.stream_id,
                      "model": self.model_name(), "time": result.wall, "pts": result.pts,
                      "detections": [{**s.detection.as_dict(), "object_id": obj.object_id,
                                      "zones": list(s.zones), "confirmed": obj.confirmed}
                                     for s, obj in tracked]})

    def _write(self, result: FrameResult, stream: _StreamObjects, changes: list[Change],
               tracked: list[tuple[Sighting, TrackedObject]]) -> None:
        """Rows and messages for this frame: ended (first: an object that left ends before
        one that replaces it starts), opened, seen again (with any change)."""
        self._write_ended(result.stream_id, stream, [c for c in changes if c.kind == "end"])
        model = self.model_name()
        picture = _Picture(lambda: self._picture(result, [s.detection for s, _ in tracked]))
        announced = {c.obj.object_id: c for c in changes if c.kind == "update"}
        opened = {c.obj.object_id for c in changes if c.kind == "new"}
        for change in changes:
            if change.kind == "new":
                self._open(result, stream, change.obj, model, picture)
        for sighting, obj in tracked:
            row = stream.rows.get(obj.object_id)
            if row is not None and obj.object_id not in opened:  # else: opened by this sighting
                self._seen_again(result, stream, row, sighting.detection, obj,
                                 announced.get(obj.object_id), model, picture)

    def _seen_again(self, result: FrameResult, stream: _StreamObjects, row: RowId,
                    detection: Detection, obj: TrackedObject, change: Change | None,
                    model: str, picture: _Picture) -> None:
        """A better sighting becomes its picture; the row follows the object (at once on a
        change or a new picture, each announced as an update; else about once a second: the
        last state is written when it ends anyway)."""
        reasons = change.reasons if change is not None else ()
        if obj.wants_picture(detection, result.wall):
            drawn = picture.get()
            if drawn is not None:  # never replace a picture with none
                obj.took_picture(detection, result.wall)
                self.store.improved(row, detection, result.pts, drawn)
                reasons += ("picture",)
        if reasons or (result.wall - stream.written.get(obj.object_id, -1e18)
                       >= WRITE_EVERY_S):
            stream.written[obj.object_id] = result.wall
            state = EventState.of(result.stream_id, model, obj)
            self.store.tracked(row, state, "update" if reasons else None, reasons)

    def _open(self, result: FrameResult, stream: _StreamObjects, obj: TrackedObject,
              model: str, picture: _Picture) -> None:
        # A result whose frame has already left the decoder's few recent ones (a busy
        # machine) opens its event without a picture; a later sighting supplies it.
        drawn = picture.get()
        if drawn is not None:
            obj.took_picture(obj.best_detection(), result.wall)
        state = EventState.of(result.stream_id, model, obj)
        row = stream.rows[obj.object_id] = self.store.opened(state, result.pts, drawn)
        if obj.detections > 1:  # confirmed after its first sighting: its counters so far
            self.store.tracked(row, state)
        stream.written[obj.object_id] = result.wall
        self.events_opened += 1
        log.info("stream %s: %s detected (%.2f), object %s", result.stream_id, obj.label,
                 obj.confidence, obj.object_id,
                 extra={"stream_id": result.stream_id, "event": "detection",
                        "label": obj.label, "object_id": obj.object_id})

    def _write_ended(self, stream_id: str, stream: _StreamObjects, ended: list[Change],
                     reason: str = "gap") -> None:
        """Under `_events_lock`: the objects' rows get their final state, their end told."""
        model = self.model_name()
        for change in ended:
            obj = change.obj
            stream.written.pop(obj.object_id, None)
            row = stream.rows.pop(obj.object_id, None)
            if row is not None:
                self.store.ended(row, EventState.of(stream_id, model, obj), reason)
                log.info("stream %s: %s object %s ended after %.1f s (%d detections, %s)",
                         stream_id, obj.label, obj.object_id, obj.last_seen - obj.first_seen,
                         obj.detections, reason,
                         extra={"stream_id": stream_id, "event": "detection_event_end",
                                "label": obj.label, "object_id": obj.object_id,
                                "reason": reason})

    def _record(self, stream_id: str, rules: StreamRules,
                tracked: list[tuple[Sighting, TrackedObject]]) -> None:
        """Start or extend the stream's event recording while a moving confirmed object
        matches (the pre-roll covers the sightings before it was confirmed)."""
        if any(obj.confirmed and not obj.stationary
               and any_match(rules.record_on, obj.label, s.zones) for s, obj in tracked):
            self.record(stream_id)

    def _picture(self, result: FrameResult, detections: list[Detection]) -> bytes | None:
        frame = self.frame_lookup(result.stream_id, result.seq)
        if frame is None:
            return None
        try:
            return encode_jpeg(draw_detections(frame, detections))
        except Exception:  # a picture is a nicety; the event is stored without it
            log.exception("stream %s: event picture failed", result.stream_id)
            return None

    # ---- streams coming and going ----------------------------------------------------------

    def forget(self, stream_id: str) -> None:
        """The stream is gone (any thread): its objects end where they were last seen."""
        self.clear_latest(stream_id)
        self._rules.pop(stream_id, None)
        with self._events_lock:
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                self._write_ended(stream_id, stream, stream.book.end_all(), "stream_removed")
            self._tracking.pop(stream_id, None)

    # ---- reads (any thread) ----------------------------------------------------------------

    def latest(self, stream_id: str, max_age_s: float = 5.0) -> list[Detection]:
        """The last model result's detections for a stream, if recent (for live snapshots)."""
        with self._lock:
            latest = self._latest.get(stream_id)
        if latest is None or time.time() - latest.wall > max_age_s:
            return []
        return latest.detections

    def clear_latest(self, stream_id: str) -> None:
        """Inference stopped on the stream: live views stop drawing its last boxes."""
        with self._lock:
            self._latest.pop(stream_id, None)

    def stats(self) -> dict[str, Any]:
        return {"events_opened": self.events_opened,
                "objects_tracked": sum(self._tracking.copy().values())}
