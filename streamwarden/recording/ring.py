"""The pre-event buffer: the last N seconds of encoded frames, starting at a keyframe.

Entries hold references to the producer's buffers (no copies), as opaque objects: the ring
only reads the facts its caller hands in (kind, keyframe, size, arrival), so it has no
GStreamer in it and is tested with hand-made frames. Video decides the window: the ring
always begins with a keyframe and covers at least `duration` seconds, so a recording asked to
start `pre_roll` seconds in the past can begin at the keyframe at or before that moment.
Audio entries are kept for the same span. A byte cap bounds memory whatever the camera's
bitrate.
"""

from __future__ import annotations

import enum
from collections import deque
from operator import attrgetter
from typing import Any, NamedTuple

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class Entry(NamedTuple):
    """One frame. A tuple: built for every frame, so the cheapest immutable record there is."""

    seq: int
    kind: str  # "video" | "audio"
    buffer: Any  # the producer's Gst.Buffer, never looked into here
    caps: Any  # its Gst.Caps
    arrival: float  # time.monotonic()
    wall: float  # time.time() at arrival
    keyframe: bool  # a video frame that decodes on its own; every audio frame
    size: int


class Rule(enum.Enum):
    """How a session's first frame is found in the ring (see `StartAt`)."""

    AT_OR_BEFORE = "at_or_before"  # the keyframe at or before a monotonic time (pre-roll)
    ARRIVED_SINCE = "arrived_since"  # the first keyframe that arrived at or after it
    WALL_SINCE = "wall_since"  # the first keyframe stamped at or after a wall-clock time
    FROM_SEQ = "from_seq"  # the first keyframe at or after a frame number (a stream change)


class StartAt(NamedTuple):
    """Where in the ring a session begins; `None` instead of a StartAt means "no replay:
    wait for the next keyframe that arrives"."""

    rule: Rule
    at: float  # seconds (monotonic or wall, by rule) or a frame number


_FIELD = {Rule.ARRIVED_SINCE: attrgetter("arrival"), Rule.WALL_SINCE: attrgetter("wall"),
          Rule.FROM_SEQ: attrgetter("seq")}


class PrerollRing:
    """Not thread-safe on its own: the recorder calls it under its lock. O(1) per frame."""

    def __init__(self, duration: float, max_bytes: int = DEFAULT_MAX_BYTES):
        self.duration = duration
        self.max_bytes = max_bytes
        self.entries: deque[Entry] = deque()
        self._keys: deque[Entry] = deque()  # video keyframes in the ring, oldest first
        self.bytes = 0
        self._seq = 0

    def append(self, kind: str, buffer: Any, caps: Any, arrival: float, wall: float,
               keyframe: bool, size: int) -> Entry:
        entry = Entry(self._seq, kind, buffer, caps, arrival, wall, keyframe, size)
        self._seq += 1
        if self.duration <= 0:
            return entry
        self.entries.append(entry)
        self.bytes += size
        if keyframe and kind == "video":
            self._keys.append(entry)
        self._trim(arrival)
        return entry

    def _drop_before(self, seq: int) -> None:
        while self.entries and self.entries[0].seq < seq:
            self.bytes -= self.entries.popleft().size

    def _trim(self, now: float) -> None:
        """Drop from the front while the next keyframe alone still covers `duration`."""
        keys = self._keys
        while len(keys) >= 2 and (now - keys[1].arrival >= self.duration
                                  or self.bytes > self.max_bytes):
            keys.popleft()
        if keys:  # frames before the first keyframe can never start a recording
            self._drop_before(keys[0].seq)

    def start_index(self, since: float) -> int | None:
        """Index of the keyframe at or before monotonic time `since` (or the oldest one)."""
        best = None
        for key in self._keys:
            if key.arrival <= since or best is None:
                best = key
            if key.arrival > since:
                break
        if best is None or not self.entries:
            return None
        return best.seq - self.entries[0].seq

    def first_keyframe_index(self, rule: Rule, at: float) -> int | None:
        """Index of the oldest video keyframe at or after `at` by `rule` (not AT_OR_BEFORE)."""
        value = _FIELD[rule]
        for index, entry in enumerate(self.entries):
            if entry.kind == "video" and entry.keyframe and value(entry) >= at:
                return index
        return None

    def index_of(self, start: StartAt | None) -> int | None:
        """Where a session that begins at `start` starts replaying; None: nothing to replay
        (no such keyframe yet), the session waits for the next one to arrive."""
        if start is None:
            return None
        if start.rule is Rule.AT_OR_BEFORE:
            return self.start_index(start.at)
        return self.first_keyframe_index(start.rule, start.at)

    def first_keyframe_since(self, wall: float) -> Entry | None:
        """The oldest keyframe that arrived at or after wall-clock time `wall`."""
        return next((key for key in self._keys if key.wall >= wall), None)

    def latest_keyframe(self) -> Entry | None:
        return self._keys[-1] if self._keys else None

    def from_index(self, index: int) -> list[Entry]:
        return list(self.entries)[index:]

    def clear(self) -> None:
        self.entries.clear()
        self._keys.clear()
        self.bytes = 0

    @property
    def span(self) -> float:
        return self.entries[-1].arrival - self.entries[0].arrival if self.entries else 0.0

    @property
    def bytes_per_second(self) -> float:
        """The stream's rate as the ring sees it; 0 until it holds half a second."""
        span = self.span
        return self.bytes / span if span > 0.5 else 0.0
