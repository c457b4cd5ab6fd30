"""Per-stream counters written by streaming threads and rates computed on the GStreamer thread.

Pad probes run on GStreamer's streaming threads, once per frame. They only bump integers and
store a timestamp (atomic under the GIL, no locks, no allocation beyond the ints), so a probe
costs microseconds. Rates (fps, bitrate) are derived from periodic samples of those counters.
The probe reads the buffer (size, keyframe flag: gst/buffers.py) and hands plain values in,
so nothing here needs GStreamer and the counters are tested with hand-made numbers.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamwarden.media.timeline import JumpDetector

_RATE_WINDOW_S = 3.0
# Jumps seen this close together are one discontinuity: an RTP clock jump shows as the
# jitter buffer's resynchronisation and as a small step back in the decode times after it.
JUMP_MERGE_S = 2.0


@dataclass
class MediaInfo:
    """What the stream is emitting, from the caps of its output pads."""

    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    framerate: float | None = None
    audio_codec: str | None = None

    def update(self, kind: str, facts: dict[str, str | int | float | None]) -> None:
        """New caps on the stream's `kind` output, as plain facts (gst/buffers.caps_facts)."""
        if kind == "video":
            self.video_codec = _VIDEO_CODECS.get(str(facts["name"]), str(facts["name"]))
            self.width = _int_or_none(facts.get("width"))
            self.height = _int_or_none(facts.get("height"))
            fps = facts.get("framerate")
            self.framerate = float(fps) if fps else None
        else:
            name = str(facts["name"])
            codec = _AUDIO_CODECS.get(name, name)
            if name == "audio/mpeg":
                codec = "aac" if facts.get("mpegversion") in (2, 4) else "mp3"
            self.audio_codec = codec


_VIDEO_CODECS = {"video/x-h264": "h264", "video/x-h265": "h265"}
_AUDIO_CODECS = {"audio/mpeg": "aac", "audio/x-opus": "opus", "audio/x-alaw": "pcma",
                 "audio/x-mulaw": "pcmu"}


def _int_or_none(value: str | int | float | None) -> int | None:
    return int(value) if value is not None else None


@dataclass
class StreamCounters:
    """Monotonic counters since the stream was added (restarts do not reset them).

    Besides frames and bytes: `damaged_frames`, video frames that follow lost data (the
    depayloader or demuxer flagged a discontinuity: a decoder shows errors until the next
    keyframe); `lost_packets`, RTP packets that never arrived (the jitter buffers' count,
    set by the stream); `discontinuities`, jumps of the camera's clock (its decode times
    leaving real time by more than `JUMP_TOLERANCE_NS`, or its RTP clock jumping), each
    kept in `jumps` until the stream takes it (`take_jumps`)."""

    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    audio_frames: int = 0
    last_frame_ns: int = 0  # time.monotonic_ns() of the last video frame, 0 = never
    damaged_frames: int = 0
    lost_packets: int = 0
    discontinuities: int = 0
    jumps: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=16))
    _detector: JumpDetector = field(default_factory=JumpDetector, repr=False)
    _fresh: bool = True  # the next video frame is an attempt's first: its flag means nothing
    _last_jump: float = float("-inf")  # wall time of the last discontinuity taken

    def count(self, kind: str, size: int, keyframe: bool, decode_ns: int | None = None,
              damaged: bool = False) -> None:
        """One frame of `size` bytes (`keyframe`, `decode_ns`, `damaged` only matter for
        video)."""
        if kind == "video":
            self.on_video(size, keyframe, decode_ns, damaged)
        else:
            self.on_audio(size)

    def on_video(self, size: int, keyframe: bool, decode_ns: int | None = None,
                 damaged: bool = False) -> None:
        self.frames += 1
        self.bytes += size
        if keyframe:
            self.keyframes += 1
        now = self.last_frame_ns = time.monotonic_ns()
        if damaged and not self._fresh:
            self.damaged_frames += 1
        self._fresh = False
        if decode_ns is not None:
            jump = self._detector.check(decode_ns, now)
            if jump is not None:
                self.jumps.append((time.time(), jump / 1e9))

    def take_jumps(self, more: Iterable[tuple[float, float]] = ()) -> list[tuple[float, float]]:
        """The discontinuities since the last call, as (wall, seconds): the jumps the frames
        showed plus `more` (seen elsewhere), those within JUMP_MERGE_S of the one before
        merged into it (the largest jump names it). Counts them."""
        jumps = self.jumps
        events = [jumps.popleft() for _ in range(len(jumps))] + list(more)
        merged: list[tuple[float, float]] = []
        for wall, seconds in sorted(events):
            if wall - self._last_jump <= JUMP_MERGE_S:
                if merged and abs(seconds) > abs(merged[-1][1]):
                    merged[-1] = (merged[-1][0], seconds)
            else:
                merged.append((wall, seconds))
                self.discontinuities += 1
            self._last_jump = wall
        return merged

    def on_audio(self, size: int) -> None:
        self.audio_frames += 1
        self.bytes += size

    def new_attempt(self) -> None:
        """A new connection: its timestamps start afresh (no jump), its first frame is
        flagged as a discontinuity by nature (no damage)."""
        self._detector.reset()
        self._fresh = True


@dataclass
class RateMeter:
    """fps and bitrate over the last few seconds, from (time, frames, bytes) samples."""

    samples: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=64))
    fps: float = 0.0
    bitrate_kbps: float = 0.0

    def sample(self, now: float, counters: StreamCounters) -> None:
        self.samples.append((now, counters.frames, counters.bytes))
        while len(self.samples) > 2 and now - self.samples[0][0] > _RATE_WINDOW_S:
            self.samples.popleft()
        t0, f0, b0 = self.samples[0]
        span = now - t0
        if span >= 0.5:
            self.fps = (counters.frames - f0) / span
            self.bitrate_kbps = (counters.bytes - b0) * 8 / 1000 / span
