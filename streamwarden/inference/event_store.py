"""A tracked object's event: its row in the database and its `event` notification.

The event log (monitor thread) captures an object as it stands (`EventState`, plain values)
and hands it here; every write runs on the database thread, and the notification goes out
from there once its row is written, so a client that reads `GET /events` on an `event`
message finds the row, and the message carries the row's id. A row's id is a future until
its insert has run; later writes for the same object are queued behind it on that one thread.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.objects import ChangeKind, TrackedObject

RowId = concurrent.futures.Future


@dataclass(frozen=True)
class EventState:
    stream_id: str
    object_id: str
    label: str
    model: str
    first_seen: float
    last_seen: float
    detections: int
    confidence: float
    box: tuple[float, float, float, float]
    zones: tuple[tuple[str, float], ...]
    current_zones: tuple[str, ...]
    path: tuple[tuple[float, float, float], ...]
    stationary: bool
    active: bool

    @classmethod
    def of(cls, stream_id: str, model: str, obj: TrackedObject) -> EventState:
        return cls(stream_id, obj.object_id, obj.label, model, obj.first_seen, obj.last_seen,
                   obj.detections, obj.confidence, obj.box, tuple(obj.zones.items()),
                   obj.current_zones, tuple(obj.path), obj.stationary, obj.active)

    def zones_json(self) -> str:
        return json.dumps([{"zone": zone, "entered": round(ts, 3)} for zone, ts in self.zones])

    def path_json(self) -> str:
        return json.dumps([[round(t, 3), round(x, 4), round(y, 4)] for t, x, y in self.path])

    def message(self, change: ChangeKind, event_id: int, reasons: tuple[str, ...],
                end_reason: str | None = None) -> dict[str, Any]:
        """The `event` notification (WebSocket, MQTT, hooks and webhooks): the event as it
        stands; an end says why (`reason`: `gap` or `stream_removed`)."""
        extra = {} if end_reason is None else {"reason": end_reason}
        return {"type": "event", "change": change, "stream_id": self.stream_id,
                "event_id": event_id, "object_id": self.object_id, "label": self.label,
                "model": self.model, "start": self.first_seen, "end": self.last_seen,
                "confidence": round(self.confidence, 4),
                "box": [round(v, 4) for v in self.box], "detections": self.detections,
                "zones": [{"zone": zone, "entered": ts} for zone, ts in self.zones],
                "current_zones": list(self.current_zones), "stationary": self.stationary,
                "active": self.active, "reasons": list(reasons), **extra}


class EventStore:
    def __init__(self, db: Database, publish: Callable[[dict], None]):
        self.db = db
        self.publish = publish

    def opened(self, state: EventState, pts: int | None, picture: bytes | None) -> RowId:
        return self.db.submit(self._open, state, pts, picture)

    def tracked(self, row: RowId, state: EventState, change: ChangeKind | None = None,
                reasons: tuple[str, ...] = ()) -> None:
        """The object was seen again; a change ("update") is announced."""
        self.db.submit(self._track, row, state, change, reasons)

    def ended(self, row: RowId, state: EventState, reason: str) -> None:
        """The object is gone (`reason`: `gap` or `stream_removed`): its final state."""
        self.db.submit(self._track, row, state, "end", (), reason)

    def improved(self, row: RowId, best: Detection, pts: int | None, picture: bytes) -> None:
        self.db.submit(self._improve, row, best, pts, picture)

    # ---- on the database thread ------------------------------------------------------------

    def _open(self, state: EventState, pts: int | None, picture: bytes | None) -> int:
        event_id = self.db.event_opened(
            state.stream_id, state.label, state.first_seen, state.confidence,
            json.dumps([round(v, 6) for v in state.box]), state.model, pts, picture,
            state.object_id, state.zones_json(), state.path_json())
        self.publish(state.message("new", event_id, ()))
        return event_id

    def _track(self, row: RowId, state: EventState, change: ChangeKind | None,
               reasons: tuple[str, ...], end_reason: str | None = None) -> None:
        event_id = row.result()  # its insert ran earlier on this same thread
        self.db.event_tracked(event_id, state.last_seen, state.detections, state.zones_json(),
                              state.path_json(), state.stationary, state.active)
        if change is not None:
            self.publish(state.message(change, event_id, reasons, end_reason))

    def _improve(self, row: RowId, best: Detection, pts: int | None, picture: bytes) -> None:
        self.db.event_improved(row.result(), best.confidence,
                               json.dumps([round(v, 6) for v in best.box]), pts, picture)
