"""Which segments (and event rows) storage limits delete: the rule, with no SQL and no files.

Footage comes in three tiers, decided per segment against the detection events of its stream,
each padded with the pre- and post-roll (the footage an event recording would hold):

- **open**: the segment overlaps an open event (an object still tracked; its span runs to
  forever). Never deleted, by age or by size: the event is not over.
- **event**: it overlaps a closed event. Deleted once it ended more than `event_retention`
  ago (`retention` when that is unset).
- **continuous**: everything else. Deleted once it ended more than `retention` ago.

Over `max_size` (after the age rules), continuous footage goes first, oldest first across
streams, then event footage, oldest first; open-event footage never. A segment still being
written is never touched. Event rows are deleted only with `event_retention` set: a closed
event whose padded end is older than it, once no remaining segment overlaps its span, so an
event row always outlives its footage (the list of events never points at footage that
retention deleted without also being as old).

`retention.py` reads the facts from the database, asks `plan`, then deletes. Everything here
is plain numbers (wall-clock seconds), tested with hand-made data in
tests/unit/test_retention_rule.py.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Tier(Enum):
    OPEN = "open"
    EVENT = "event"
    CONTINUOUS = "continuous"


@dataclass(frozen=True)
class Segment:
    id: int
    stream_id: str
    start: float
    end: float | None  # None: still being written
    bytes: int = 0


@dataclass(frozen=True)
class Padding:
    """An event's footage reaches `pre` seconds before its first sighting (the pre-roll an
    event recording starts with) and `post` seconds after its last (the post-roll)."""

    pre: float = 0.0
    post: float = 0.0

    @classmethod
    def of(cls, pre_roll: float | None, post_roll: float, buffer_duration: float) -> Padding:
        """From `[inference]`'s settings: the pre-roll (None: all the stream's ring holds)
        is at most what the ring holds, as in an event recording."""
        pre = buffer_duration if pre_roll is None else min(pre_roll, buffer_duration)
        return cls(pre, post_roll)


@dataclass(frozen=True)
class EventSpan:
    """An event's footage: [start, end], padded; `end` is infinite while the event is open."""

    id: int
    stream_id: str
    start: float
    end: float
    open: bool = False

    @classmethod
    def of(cls, event_id: int, stream_id: str, first_seen: float, last_seen: float,
           active: bool, padding: Padding) -> EventSpan:
        end = math.inf if active else last_seen + padding.post
        return cls(event_id, stream_id, first_seen - padding.pre, end, active)


@dataclass(frozen=True)
class Limits:
    retention: float | None = None  # continuous footage, seconds after a segment ended
    event_retention: float | None = None  # footage of closed events; None: `retention`
    max_size: int | None = None  # bytes, all segments together

    @property
    def event_age(self) -> float | None:
        return self.event_retention if self.event_retention is not None else self.retention

    @property
    def active(self) -> bool:
        return self.retention is not None or self.max_size is not None \
            or self.event_retention is not None


@dataclass
class Plan:
    """What to delete: segment ids in order (age first, then size) and event ids."""

    segments: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    by_age: int = 0  # how many of `segments` went for their age (the rest for size)


class Intervals:
    """Sorted, disjoint closed intervals: does [a, b] overlap any of them (touching counts)?"""

    def __init__(self, spans: Iterable[tuple[float, float]]):
        merged: list[list[float]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlaps(self, start: float, end: float) -> bool:
        i = bisect.bisect_left(self.ends, start)  # the first interval ending at or after start
        return i < len(self.starts) and self.starts[i] <= end


class Tiers:
    """Each stream's closed-event spans and the earliest start of its open events."""

    def __init__(self, events: Iterable[EventSpan]):
        closed: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.open_from: dict[str, float] = {}
        for event in events:
            if event.open:
                self.open_from[event.stream_id] = min(
                    event.start, self.open_from.get(event.stream_id, math.inf))
            else:
                closed[event.stream_id].append((event.start, event.end))
        self.closed = {sid: Intervals(spans) for sid, spans in closed.items()}

    def of(self, segment: Segment) -> Tier:
        end = segment.end if segment.end is not None else math.inf
        if end >= self.open_from.get(segment.stream_id, math.inf):
            return Tier.OPEN
        spans = self.closed.get(segment.stream_id)
        if spans is not None and spans.overlaps(segment.start, end):
            return Tier.EVENT
        return Tier.CONTINUOUS


def plan(segments: Sequence[Segment], events: Sequence[EventSpan], now: float,
         limits: Limits) -> Plan:
    """What the limits delete now. `segments`: every segment, written or being written;
    `events`: every event, padded (EventSpan.of)."""
    result = Plan()
    tiers = Tiers(events)
    finished = sorted((s for s in segments if s.end is not None), key=lambda s: (s.start, s.id))
    tier = {s.id: tiers.of(s) for s in finished}
    for segment in finished:
        if _too_old(segment, tier[segment.id], now, limits):
            result.segments.append(segment.id)
    result.by_age = len(result.segments)
    if limits.max_size is not None:
        result.segments += _over_size(segments, finished, tier, set(result.segments),
                                      limits.max_size)
    if limits.event_retention is not None:
        result.events = _expired_events(events, segments, set(result.segments), now,
                                        limits.event_retention)
    return result


def _too_old(segment: Segment, tier: Tier, now: float, limits: Limits) -> bool:
    assert segment.end is not None
    age = {Tier.CONTINUOUS: limits.retention, Tier.EVENT: limits.event_age}.get(tier)
    return age is not None and segment.end < now - age


def _over_size(segments: Sequence[Segment], finished: list[Segment], tier: dict[int, Tier],
               gone: set[int], max_size: int) -> list[int]:
    """Oldest continuous footage first, then the oldest event footage, down to `max_size`."""
    total = sum(s.bytes for s in segments if s.id not in gone)
    chosen: list[int] = []
    for wanted in (Tier.CONTINUOUS, Tier.EVENT):
        for segment in finished:
            if total <= max_size:
                return chosen
            if tier[segment.id] is wanted and segment.id not in gone:
                chosen.append(segment.id)
                total -= segment.bytes
    return chosen


def _expired_events(events: Sequence[EventSpan], segments: Sequence[Segment], gone: set[int],
                    now: float, event_retention: float) -> list[int]:
    """Closed events older than `event_retention` whose footage is all gone."""
    kept: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in segments:
        if s.id not in gone:
            kept[s.stream_id].append((s.start, s.end if s.end is not None else math.inf))
    footage = {sid: Intervals(spans) for sid, spans in kept.items()}
    expired = []
    for event in events:
        if event.open or event.end >= now - event_retention:
            continue
        left = footage.get(event.stream_id)
        if left is None or not left.overlaps(event.start, event.end):
            expired.append(event.id)
    return expired
