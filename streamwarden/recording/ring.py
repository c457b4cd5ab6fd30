"""The pre-event buffer: the last N seconds of encoded frames, starting at a keyframe.

Entries hold references to the producer's buffers (no copies). Video decides the window: the
ring always begins with a keyframe and covers at least `duration` seconds, so a recording
asked to start `pre_roll` seconds in the past can begin at the keyframe at or before that
moment. Audio entries are kept for the same span. A byte cap bounds memory whatever the
camera's bitrate.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from streamwarden.gst.init import Gst

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


# Looked up once: attribute access on Gst goes through gi's override proxy (about 1 µs each),
# and append runs for every frame.
_DELTA_UNIT = Gst.BufferFlags.DELTA_UNIT


class Entry(NamedTuple):
    """One frame. A tuple: built for every frame, so the cheapest immutable record there is."""

    seq: int
    kind: str  # "video" | "audio"
    buffer: Gst.Buffer
    caps: Gst.Caps
    arrival: float  # time.monotonic()
    wall: float  # time.time() at arrival
    keyframe: bool
    size: int


class PrerollRing:
    """Not thread-safe on its own: the recorder calls it under its lock. O(1) per frame."""

    def __init__(self, duration: float, max_bytes: int = DEFAULT_MAX_BYTES):
        self.duration = duration
        self.max_bytes = max_bytes
        self.entries: deque[Entry] = deque()
        self._keys: deque[Entry] = deque()  # video keyframes in the ring, oldest first
        self.bytes = 0
        self._seq = 0

    def append(self, kind: str, buffer: Gst.Buffer, caps: Gst.Caps, arrival: float,
               wall: float) -> Entry:
        keyframe = kind == "audio" or not buffer.has_flags(_DELTA_UNIT)
        entry = Entry(self._seq, kind, buffer, caps, arrival, wall, keyframe, buffer.get_size())
        self._seq += 1
        if self.duration <= 0:
            return entry
        self.entries.append(entry)
        self.bytes += entry.size
        if kind == "video" and keyframe:
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
