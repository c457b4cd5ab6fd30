"""The RTSP camera's faults as plain logic (no GStreamer): when to stall, what time to stamp.

A real camera's stall is a gap in what it sends; its clock problems (a jump, drift) are in
its timestamps, not in when packets leave. The zoo camera sends every unit at its wall-clock
due time and lets its RTSP server's sinks send at once (no clock sync), so the timestamps it
puts on buffers, and from them the RTP timestamps, can run however a fault says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.zoo.spec import RtspBehaviour

WRAP = 1 << 32


@dataclass
class StallPlan:
    """Windows (start, end) in seconds of media time during which nothing is sent."""

    windows: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def of(cls, behaviour: RtspBehaviour) -> StallPlan:
        return cls([(s.at, s.at + s.seconds) for s in behaviour.stalls])

    def add(self, start: float, seconds: float) -> None:
        self.windows.append((start, start + seconds))

    def stalled(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.windows)


def headroom_seconds(behaviour: RtspBehaviour) -> float:
    """A constant added to every timestamp so a backward jump never goes below zero."""
    return max(0.0, -behaviour.jump_seconds) + 1.0


@dataclass(frozen=True)
class Clock:
    """Maps a unit's true media time (ns) to the timestamp the camera stamps it with.

    `drift` 0.01: timestamps advance 1 % faster than wall time. From `jump_at` seconds (of the
    unit's due time, so a frame and its reordered neighbours jump together) every timestamp is
    shifted by `jump_seconds`.
    """

    drift: float = 0.0
    jump_at: float | None = None
    jump_seconds: float = 0.0
    headroom: float = 1.0

    @classmethod
    def of(cls, behaviour: RtspBehaviour) -> Clock:
        return cls(behaviour.drift, behaviour.jump_at, behaviour.jump_seconds,
                   headroom_seconds(behaviour))

    def stamp(self, media_ns: int, due_ns: int) -> int:
        shift = self.headroom
        if self.jump_at is not None and due_ns >= self.jump_at * 1e9:
            shift += self.jump_seconds
        return round(media_ns * (1 + self.drift) + shift * 1e9)


def wrap_offset(seconds: float, clock_rate: int) -> int:
    """A payloader timestamp-offset that makes the 32-bit RTP clock wrap `seconds` in."""
    return (WRAP - round(seconds * clock_rate)) % WRAP
