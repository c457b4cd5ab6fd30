"""Tracked objects of one stream and their lifecycle: new, updated, stationary, ended.

Plain values and a caller's clock (the frames' wall times), no GStreamer, no database: the
event log feeds it what the tracker matched in each model call and turns what it returns
into event rows and messages.

- new: a track id never seen (or whose object already ended) opens an object, unless it is
  a stationary object the tracker lost and found again at the same place under a new id
  (a parked car the detector missed for a while): that object goes on.
- confirmed: an object is tracked from its first sighting but is an event ("new") only
  once its scores confirm it (inference/confirm.py: the median of its recent scores reaches
  `event_score`); until then it makes no change at all, and it ends silently if it leaves
  unconfirmed. Its first-seen time, path and zones run from its first sighting, so the
  event announced a call or two later still starts where the object did.
- updated: each sighting moves `last_seen`, adds to the path (bounded), records the first
  entry into each zone; entering a zone, becoming stationary or moving again is a change.
- stationary: the box's centre stayed within a small radius for `stationary_after`.
- ended: not seen for `lost_after` (`stationary_timeout` while stationary), or the stream
  sent no result at all for `lost_after` (a camera gone dark, inference off).

Frames the motion gate skipped (nothing moved) say nothing new, but the objects seen in the
last model call are still there: `unchanged` keeps them, so a still scene closes nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from streamwarden.inference.confirm import Confirmation
from streamwarden.inference.detection import Detection
from streamwarden.inference.geometry import Box, Point, centre, iou

PATH_POINTS = 64  # a path longer than this keeps every other point (its shape, bounded)
PATH_STEP = 0.01  # a sighting closer than this to the path's last point adds no point
STATIONARY_RADIUS = 0.1  # of the box's diagonal: the jitter of a still object's box
STATIONARY_MIN_RADIUS = 0.005
SAME_PLACE_IOU = 0.5  # a new track this close to a lost stationary object is that object
PICTURE_EVERY_S = 2.0  # a better sighting replaces the event's picture at most this often
PICTURE_GAIN = 0.05  # ... and only if its quality is this much (relative) better

ChangeKind = Literal["new", "update", "end"]


def quality(detection: Detection) -> float:
    """How good a picture of the object this sighting makes: confident and large."""
    x0, y0, x1, y1 = detection.box
    return detection.confidence * math.sqrt(max(0.0, (x1 - x0) * (y1 - y0)))


@dataclass(frozen=True)
class Sighting:
    """One detection in one model call, with its track id and the zones it stands in."""

    track_id: int
    detection: Detection
    zones: tuple[str, ...] = ()


@dataclass
class TrackedObject:
    object_id: str
    label: str
    first_seen: float
    last_seen: float
    box: Box  # of the best sighting (the event's picture)
    confidence: float  # of the best sighting
    last_box: Box
    detections: int = 1
    path: list[tuple[float, float, float]] = field(default_factory=list)  # (time, x, y)
    zones: dict[str, float] = field(default_factory=dict)  # zone → first entry
    current_zones: tuple[str, ...] = ()
    stationary: bool = False
    active: bool = True
    anchor: Point = (0.0, 0.0)  # where it was when it last moved
    anchor_since: float = 0.0
    picture_quality: float = -1.0  # -1: no picture yet
    picture_at: float = float("-inf")
    confirmation: Confirmation = field(default_factory=lambda: Confirmation(0.0))

    @property
    def confirmed(self) -> bool:
        """Whether the object is an event (its scores confirmed it; inference/confirm.py)."""
        return self.confirmation.confirmed

    def wants_picture(self, detection: Detection, now: float) -> bool:
        """Whether this sighting should become the event's picture (the best so far, and
        not more often than every PICTURE_EVERY_S). An event without one takes any."""
        if self.picture_quality < 0:
            return True
        return (quality(detection) > self.picture_quality * (1 + PICTURE_GAIN)
                and now - self.picture_at >= PICTURE_EVERY_S)

    def best_detection(self) -> Detection:
        return Detection(self.label, self.confidence, self.box)

    def took_picture(self, detection: Detection, now: float) -> None:
        self.picture_quality, self.picture_at = quality(detection), now
        self.box, self.confidence = detection.box, detection.confidence


@dataclass(frozen=True)
class Change:
    kind: ChangeKind  # "new": the object was just confirmed, its event starts
    obj: TrackedObject
    reasons: tuple[str, ...] = ()  # for updates: "zone:<name>", "stationary", "moving"


class ObjectBook:
    """The tracked objects of one stream; changes only for confirmed ones (events)."""

    def __init__(self, *, lost_after: float, stationary_after: float,
                 stationary_timeout: float, event_score: float = 0.0,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:16]):
        self.lost_after = lost_after
        self.event_score = event_score
        self.stationary_after = stationary_after
        self.stationary_timeout = stationary_timeout
        self._new_id = new_id
        self._by_track: dict[int, TrackedObject] = {}
        self._last_call = float("-inf")

    def object(self, track_id: int) -> TrackedObject:
        """The object a track id seen in the last `observe` belongs to."""
        return self._by_track[track_id]

    @property
    def active(self) -> list[TrackedObject]:
        return list({id(o): o for o in self._by_track.values() if o.active}.values())

    @property
    def confirmed(self) -> list[TrackedObject]:
        """The active objects that are events."""
        return [o for o in self.active if o.confirmed]

    def observe(self, now: float, sightings: list[Sighting]) -> list[Change]:
        """A model call's tracked detections (none: nothing seen)."""
        changes = self.expire(now)
        self._last_call = now
        for sighting in sightings:
            obj = self._by_track.get(sighting.track_id)
            if obj is None or not obj.active:
                obj = self._same_place(sighting, now)
            if obj is None:
                obj = self._open(sighting, now)
                reasons: tuple[str, ...] = ()
            else:
                reasons = self._sighted(obj, sighting, now)
            if obj.confirmation.add(sighting.detection.confidence):
                # the event's picture is this sighting's (its frame is the one drawn)
                obj.box, obj.confidence = sighting.detection.box, sighting.detection.confidence
                changes.append(Change("new", obj))
            elif reasons and obj.confirmed:
                changes.append(Change("update", obj, reasons))
            self._by_track[sighting.track_id] = obj
        return changes

    def unchanged(self, now: float) -> None:
        """A frame the motion gate skipped: what the last model call saw is still there."""
        for obj in self.active:
            if obj.last_seen >= self._last_call:
                obj.last_seen = now
        self._last_call = now

    def expire(self, now: float) -> list[Change]:
        """End the objects not seen for their timeout; all of them once the stream has sent
        no model result for `lost_after` (a dark camera cannot vouch for a parked car)."""
        ended, left = [], False
        dark = now - self._last_call > self.lost_after
        for obj in self.active:
            timeout = self.stationary_timeout if obj.stationary and not dark else self.lost_after
            if now - obj.last_seen > timeout:
                obj.active, left = False, True
                if obj.confirmed:  # an unconfirmed object was never an event
                    ended.append(Change("end", obj))
        if left:
            self._by_track = {t: o for t, o in self._by_track.items() if o.active}
        return ended

    def end_all(self) -> list[Change]:
        """The stream is gone: every object ends where it was last seen."""
        ended = []
        for obj in self.active:
            obj.active = False
            if obj.confirmed:
                ended.append(Change("end", obj))
        self._by_track.clear()
        return ended

    # ---- helpers ---------------------------------------------------------------------------

    def _open(self, sighting: Sighting, now: float) -> TrackedObject:
        det = sighting.detection
        obj = TrackedObject(self._new_id(), det.label, now, now, det.box, det.confidence,
                            det.box, anchor=centre(det.box), anchor_since=now,
                            confirmation=Confirmation(self.event_score))
        x, y = centre(det.box)
        obj.path.append((now, x, y))
        self._enter_zones(obj, sighting.zones, now)
        return obj

    def _same_place(self, sighting: Sighting, now: float) -> TrackedObject | None:
        """A stationary object not seen in this call, where this new track is."""
        det = sighting.detection
        for obj in self.active:
            if (obj.stationary and obj.label == det.label and obj.last_seen < now
                    and iou(obj.last_box, det.box) >= SAME_PLACE_IOU):
                return obj
        return None

    def _sighted(self, obj: TrackedObject, sighting: Sighting, now: float) -> tuple[str, ...]:
        det = sighting.detection
        obj.last_seen = now
        obj.detections += 1
        obj.last_box = det.box
        point = centre(det.box)
        _extend_path(obj.path, now, point)
        reasons = self._enter_zones(obj, sighting.zones, now)
        return reasons + self._stillness(obj, det.box, point, now)

    @staticmethod
    def _enter_zones(obj: TrackedObject, zones: tuple[str, ...], now: float) -> tuple[str, ...]:
        obj.current_zones = zones
        entered = tuple(zone for zone in zones if zone not in obj.zones)
        for zone in entered:
            obj.zones[zone] = now
        return tuple(f"zone:{zone}" for zone in entered)

    def _stillness(self, obj: TrackedObject, box: Box, point: Point,
                   now: float) -> tuple[str, ...]:
        x0, y0, x1, y1 = box
        radius = max(STATIONARY_MIN_RADIUS, STATIONARY_RADIUS * math.hypot(x1 - x0, y1 - y0))
        if math.dist(point, obj.anchor) > radius:
            obj.anchor, obj.anchor_since = point, now
            if obj.stationary:
                obj.stationary = False
                return ("moving",)
        elif not obj.stationary and now - obj.anchor_since >= self.stationary_after:
            obj.stationary = True
            return ("stationary",)
        return ()


def _extend_path(path: list[tuple[float, float, float]], now: float, point: Point) -> None:
    if path and math.dist(path[-1][1:], point) < PATH_STEP:
        return
    path.append((now, *point))
    if len(path) > PATH_POINTS:
        last = path[-1]
        del path[1::2]  # keeps the first point, halves the rest
        if path[-1] != last:
            path.append(last)
