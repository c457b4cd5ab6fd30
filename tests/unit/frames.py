"""Hand-made frames for the pure rules: a camera that delivers numbered frames into a
pre-event ring at a steady rate, with a keyframe every `gop` frames, on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

from streamwarden.recording.ring import Entry, PrerollRing

T0 = 1000.0  # a fake monotonic clock
WALL_OFFSET = 1_800_000_000.0  # wall time = monotonic + this
KEY_BYTES, DELTA_BYTES, AUDIO_BYTES = 5000, 500, 50


@dataclass
class FakeCamera:
    """Frame n of the camera is the int n (the "buffer"); `caps` stands for its Gst.Caps."""

    ring: PrerollRing
    fps: int = 25
    gop: int = 25
    base: float = T0  # the clock is base + tick / fps: exact at whole seconds
    tick: int = 0
    number: int = 0  # the next frame's number (across connections)
    in_gop: int = 0  # the next frame's place in its GOP (0: a keyframe)
    caps: str = "640x360"

    def video(self) -> Entry:
        keyframe = self.in_gop == 0
        entry = self.ring.append("video", self.number, self.caps, self.now,
                                 self.now + WALL_OFFSET, keyframe,
                                 KEY_BYTES if keyframe else DELTA_BYTES)
        self.number += 1
        self.in_gop = (self.in_gop + 1) % self.gop
        self.tick += 1
        return entry

    @property
    def now(self) -> float:
        return self.base + self.tick / self.fps

    def wait(self, seconds: float) -> None:
        """Time passes without frames (an outage, a pause)."""
        self.base += seconds

    def audio(self) -> Entry:
        return self.ring.append("audio", -self.number, "aac", self.now, self.now + WALL_OFFSET,
                                True, AUDIO_BYTES)

    def run(self, seconds: float) -> list[Entry]:
        return [self.video() for _ in range(round(seconds * self.fps))]

    def reconnect(self, mid_gop_at: int, caps: str | None = None) -> None:
        """A new connection whose first frame is `mid_gop_at` frames into a GOP (0: it
        starts with a keyframe), maybe with new caps."""
        self.in_gop = mid_gop_at % self.gop
        if caps is not None:
            self.caps = caps
