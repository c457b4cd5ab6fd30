"""From per-frame detections to what users look at: events, pictures, pushes, recordings.

Runs on the inference monitor thread for every frame result. A detection of a label on a
stream opens an *event*; further detections of that label within `event_gap` extend it (one
row, its end time and count updated) instead of filling the database at the model's rate, as
Frigate groups detections into events. The event keeps the picture (JPEG, boxes drawn) of its
most confident detection. Every frame with detections is pushed on the WebSocket; a label in
`record_on` starts, or extends, an event recording with pre- and post-roll.

An event's life is told too (for WebSocket clients, hooks and webhooks): `event_start` once its
row exists (so it carries the row's id), `event_update` when a more confident detection
becomes its picture (at most every PICTURE_EVERY_S), `event_end` once no detection extended it
for `event_gap` (checked by `expire`, which the service calls every second, since a camera
that went dark sends no result to notice it by) or when its stream is removed.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.runner import FrameResult
from streamwarden.pixels.draw import draw_detections, encode_jpeg

log = logging.getLogger("streamwarden.inference")

PICTURE_EVERY_S = 2.0  # a better detection replaces the event's picture at most this often
PICTURE_GAIN = 0.05  # ... and only if it is this much more confident


@dataclass
class _OpenEvent:
    row: concurrent.futures.Future
    stream_id: str
    label: str
    model: str
    start: float
    last_ts: float
    confidence: float
    picture_at: float
    has_picture: bool
    detections: int = 1


@dataclass
class LatestDetections:
    seq: int
    wall: float
    detections: list[Detection]


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


class EventLog:
    def __init__(self, db: Database, *, model_name: Callable[[], str], event_gap: float,
                 classes: list[str] | None, record_on: list[str],
                 frame_lookup: Callable[[str, int], np.ndarray | None],
                 publish: Callable[[dict], None],
                 record: Callable[[str], None]):
        self.db = db
        self.model_name = model_name
        self.event_gap = event_gap
        self.classes = set(classes) if classes else None
        self.record_on = set(record_on)
        self.frame_lookup = frame_lookup
        self.publish = publish
        self.record = record
        self._open: dict[tuple[str, str], _OpenEvent] = {}
        self._latest: dict[str, LatestDetections] = {}
        self._lock = threading.Lock()
        # `_open` is changed by results (monitor thread), `expire` and `forget` (other threads)
        self._events_lock = threading.Lock()
        self.events_opened = 0

    def handle(self, result: FrameResult) -> None:
        detections = [d for d in result.detections
                      if self.classes is None or d.label in self.classes]
        if result.called:
            with self._lock:
                self._latest[result.stream_id] = LatestDetections(result.seq, result.wall,
                                                                  detections)
        if not detections:
            return
        model = self.model_name()
        self.publish({"type": "detection", "stream_id": result.stream_id, "model": model,
                      "time": result.wall, "pts": result.pts,
                      "detections": [d.as_dict() for d in detections]})
        by_label: dict[str, list[Detection]] = {}
        for det in detections:
            by_label.setdefault(det.label, []).append(det)
        picture = _Picture(lambda: self._picture(result, detections))
        for label, group in by_label.items():
            best = max(group, key=lambda d: d.confidence)
            with self._events_lock:
                event = self._open.get((result.stream_id, label))
                if event is not None and result.wall - event.last_ts > self.event_gap:
                    self._end(event, "gap")  # `expire` had not run since it went quiet
                    event = None
                if event is None:
                    self._open_event(result, label, best, model, picture.get())
                else:
                    self._extend_event(event, result, best, len(group), picture)
            if label in self.record_on:
                self.record(result.stream_id)

    def _open_event(self, result: FrameResult, label: str, best: Detection, model: str,
                    picture: bytes | None) -> None:
        ts = result.wall
        row = self.db.submit(self.db.event_opened, result.stream_id, label, ts,
                             best.confidence, json.dumps(list(best.box)), model, result.pts,
                             picture)
        event = _OpenEvent(row, result.stream_id, label, model, ts, ts, best.confidence, ts,
                           picture is not None)
        self._open[(result.stream_id, label)] = event
        self._announce(event, "event_start")
        self.events_opened += 1
        log.info("stream %s: %s detected (%.2f)", result.stream_id, label, best.confidence,
                 extra={"stream_id": result.stream_id, "event": "detection", "label": label})

    def _extend_event(self, event: _OpenEvent, result: FrameResult, best: Detection,
                      count: int, picture: _Picture) -> None:
        ts = result.wall
        event.last_ts = ts
        event.detections += count
        self.db.submit(self._extend, event.row, ts, count)
        # An event opened without a picture (its frame had already left the decoder's few
        # recent ones: a busy machine) takes the next one it can get.
        if event.has_picture and (best.confidence < event.confidence + PICTURE_GAIN
                                  or ts - event.picture_at < PICTURE_EVERY_S):
            return
        drawn = picture.get()
        if drawn is not None:  # never replace a picture with none
            event.confidence, event.picture_at = best.confidence, ts
            event.has_picture = True
            self.db.submit(self._improve, event.row, best, result.pts, drawn)
            self._announce(event, "event_update")

    def _announce(self, event: _OpenEvent, kind: str, **extra: Any) -> None:
        """Publish `kind` about `event` as it is now, once its row's id is known (at once if
        the row is written, else on the database thread right after; never waiting)."""
        message = {"type": kind, "stream_id": event.stream_id, "label": event.label,
                   "start": event.start, "end": event.last_ts, "confidence": event.confidence,
                   "detections": event.detections, "model": event.model, **extra}

        def send(row: concurrent.futures.Future) -> None:
            if not row.cancelled() and row.exception() is None:
                self.publish({**message, "event_id": row.result()})

        event.row.add_done_callback(send)

    def _end(self, event: _OpenEvent, reason: str) -> None:
        """Under `_events_lock`: the event is over; it is forgotten and its end told."""
        self._open.pop((event.stream_id, event.label), None)
        log.info("stream %s: %s event ended after %.1f s (%d detections)", event.stream_id,
                 event.label, event.last_ts - event.start, event.detections,
                 extra={"stream_id": event.stream_id, "event": "detection_event_end",
                        "label": event.label, "reason": reason})
        self._announce(event, "event_end", reason=reason)

    def expire(self, now: float) -> None:
        """End every event that no detection extended for `event_gap` (any thread)."""
        with self._events_lock:
            for event in [e for e in self._open.values() if now - e.last_ts > self.event_gap]:
                self._end(event, "gap")

    def _extend(self, row: concurrent.futures.Future, ts: float, count: int) -> None:
        self.db.event_extended(row.result(), ts, count)  # row ran earlier on this same thread

    def _improve(self, row: concurrent.futures.Future, best: Detection, pts: int,
                 picture: bytes | None) -> None:
        self.db.event_improved(row.result(), best.confidence, json.dumps(list(best.box)), pts,
                               picture)

    def _picture(self, result: FrameResult, detections: list[Detection]) -> bytes | None:
        frame = self.frame_lookup(result.stream_id, result.seq)
        if frame is None:
            return None
        try:
            return encode_jpeg(draw_detections(frame, detections))
        except Exception:  # a picture is a nicety; the event is stored without it
            log.exception("stream %s: event picture failed", result.stream_id)
            return None

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

    def forget(self, stream_id: str) -> None:
        """The stream is gone: its open events end too."""
        self.clear_latest(stream_id)
        with self._events_lock:
            for event in [e for e in self._open.values() if e.stream_id == stream_id]:
                self._end(event, "stream_removed")

    def stats(self) -> dict[str, Any]:
        return {"events_opened": self.events_opened}
