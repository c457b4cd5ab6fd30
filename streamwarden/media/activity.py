"""Activity judged from the compressed stream: is anything moving, before anything decodes?

An encoder spends bits on what changed. In a still scene every P/B-frame is small and about
the same size (noise, the timestamp overlay); when something moves the frames that carry it
grow. So the size of each non-keyframe, against the camera's own recent baseline, says
whether decoding at the detection rate is worth it, at the cost of a few integer operations
per frame (no pixels).

The baseline is an exponentially weighted mean and mean absolute deviation of the sizes
(`alpha` per frame, about ten seconds of frames at 25 fps by default), per camera, so it
follows bitrate settings, night noise and slow drifts (the light changing) by itself.
Keyframes are left out: their size says how complex the picture is, not whether it changed.
A frame is *moving* when it exceeds the mean by `threshold` deviations, where the deviation
is floored (`min_relative` of the mean, `min_bytes`) so a perfectly still synthetic scene,
whose deviation is near zero, does not call a few bytes of jitter motion. A moving frame
leaves the deviation alone and moves the mean only a quarter step toward the trigger level,
so a person walking for a minute does not become "still" within seconds (the deviation
would otherwise grow with every big frame), while a lasting change of the stream (a higher
bitrate set on the camera) is absorbed within a minute or two (about 1.5 % a second).

State: `active` from the first moving frame until `hold` seconds after the last one; `idle`
otherwise. Until `warmup` non-keyframes have been seen there is no baseline and the state is
active (decode as if the gate were off): a gate must never hide the first seconds of a
stream. Plain numbers in, a state out; the clock is the caller's (tests use a fake one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Activity(enum.StrEnum):
    IDLE = "idle"
    ACTIVE = "active"


@dataclass(frozen=True)
class ActivitySettings:
    """The gate's knobs (`[inference] activity_*`); the defaults suit 1-25 fps cameras."""

    threshold: float = 4.0  # deviations above the mean that count as movement
    hold: float = 5.0  # seconds active after the last moving frame
    alpha: float = 0.004  # baseline weight per frame (~250 frames: 10 s at 25 fps)
    min_relative: float = 0.15  # deviation floor, as a fraction of the mean size
    min_bytes: float = 64.0  # deviation floor in bytes (a still synthetic scene)
    warmup: int = 25  # non-keyframes before the baseline is trusted
    # while idle, a keyframe within this fraction of the last decoded one's size shows the
    # same picture: not decoded, at most for `keyframe_refresh` seconds
    keyframe_change: float = 0.03
    keyframe_refresh: float = 10.0


class ActivityMeter:
    """Per camera: frame sizes in, `Activity` out (`observe`), counters for statistics."""

    def __init__(self, settings: ActivitySettings | None = None):
        self.settings = settings or ActivitySettings()
        self.mean = 0.0
        self.deviation = 0.0
        self.samples = 0
        self._active_until = float("-inf")
        self.state = Activity.ACTIVE
        self.triggers = 0  # times the state went from idle to active
        self._decoded_keys: list[tuple[float, float]] = []  # (time, size) within the refresh

    def reset(self) -> None:
        """A new stream (reconnect, new caps): sizes of the old one say nothing now."""
        self.mean = self.deviation = 0.0
        self.samples = 0
        self._active_until = float("-inf")
        self.state = Activity.ACTIVE
        self._decoded_keys = []

    def limit(self) -> float:
        """The size above which a non-keyframe counts as movement."""
        s = self.settings
        floor = max(self.deviation, s.min_relative * self.mean, s.min_bytes)
        return self.mean + s.threshold * floor

    def observe(self, size: int, keyframe: bool, now: float) -> Activity:
        """One encoded frame of `size` bytes at `now` (seconds, any monotonic clock)."""
        if keyframe:
            return self._settle(now)
        s = self.settings
        if self.samples < s.warmup:
            self._learn(float(size), 1.0 / (self.samples + 1))
            self.samples += 1
            self._active_until = now  # active through warm-up, then idle unless moving
            self.state = Activity.ACTIVE
            return self.state
        limit = self.limit()
        self.samples += 1
        if size <= limit:
            self._learn(float(size), s.alpha)
        else:  # moving: the mean creeps toward the trigger level, the deviation stays
            self.mean += s.alpha / 4 * (limit - self.mean)
            if self.state is Activity.IDLE:
                self.triggers += 1
            self._active_until = now + s.hold
            self.state = Activity.ACTIVE
            return self.state
        return self._settle(now)

    def keyframe_wanted(self, size: int, now: float) -> bool:
        """Whether a keyframe (just `observe`d) is worth decoding. While idle, one the size
        (within `keyframe_change`) of a keyframe decoded in the last `keyframe_refresh`
        seconds shows a picture already seen (the same still scene; or one of two, a light
        that blinks, an encoder whose rate control alternates), so it is not decoded, until
        `keyframe_refresh` has passed since the last one that was: a still scene then
        decodes one picture per refresh instead of one per GOP. A skipped keyframe costs
        nothing later: a P-frame that refers to it is concealed with the last decoded
        picture, which in a still scene is the same one (see pixels/decoder.py)."""
        s = self.settings
        recent = [(t, k) for t, k in self._decoded_keys if now - t < s.keyframe_refresh]
        seen = any(abs(size - k) <= s.keyframe_change * k for _, k in recent)
        if self.state is Activity.IDLE and seen:
            self._decoded_keys = recent
            return False
        self._decoded_keys = [*recent[-7:], (now, float(size))]
        return True

    def _settle(self, now: float) -> Activity:
        if self.state is Activity.ACTIVE and now >= self._active_until \
                and self.samples >= self.settings.warmup:
            self.state = Activity.IDLE
        return self.state

    def _learn(self, size: float, weight: float) -> None:
        error = size - self.mean
        self.mean += weight * error
        self.deviation += weight * (abs(error) - self.deviation)
