"""Timestamp rules every consumer of encoded frames needs: start at a keyframe, rebase, notice
when the camera's clock jumps, and keep one forward timeline across reconnects.

Times are nanoseconds; `None` means the frame carries no such time. A frame's *decode time*
is its DTS where set, else its PTS: frames are handed on in decode order, and with B-frames
the PTS of consecutive frames goes back and forth while the DTS only grows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

SECOND = 1_000_000_000
# A camera's clock is judged to have jumped when decode time and arrival time disagree by more
# than this: large enough for network jitter and for batches drained every 0.2 s.
JUMP_TOLERANCE_NS = 2 * SECOND
DEFAULT_FRAME_NS = 40_000_000  # 25 fps, until the stream says otherwise


def decode_time(pts: int | None, dts: int | None) -> int | None:
    return dts if dts is not None else pts


def interleave(video: list[T], audio: list[T], key: Callable[[T], int]) -> Iterable[T]:
    """Video and audio frames that waited apart (each list in its own arrival order) as one
    stream in decode order, the way they arrived: a muxer and a pre-event buffer need them
    interleaved. On a tie video comes first (the picture the audio goes with). A greedy
    two-way merge: a list that is itself out of order is taken as it comes, never sorted."""
    if not audio:
        return video
    if not video:
        return audio
    return heapq.merge(video, audio, key=key)


class KeyframeGate:
    """Nothing passes until a video keyframe (audio included): a decoder cannot start on a
    delta frame, and audio from before the first picture would start a file with no video.
    `close()` (a new connection, a discontinuity) makes it wait for the next keyframe again."""

    __slots__ = ("is_open",)

    def __init__(self) -> None:
        self.is_open = False

    def admit(self, is_video: bool, keyframe: bool) -> bool:
        if not self.is_open:
            if not (is_video and keyframe):
                return False
            self.is_open = True
        return True

    def close(self) -> None:
        self.is_open = False


class Rebase:
    """Camera time → an output timeline, fixed by the first frame it is anchored on.

    Both PTS and DTS move by the same offset, so composition offsets (PTS - DTS) survive. The
    anchor is the first frame's decode time, so the output's first DTS is `out_base` and its
    PTS is at or after it; a frame that decodes before the anchor (audio that arrived ahead
    of the first picture) maps to `None` and is dropped.
    """

    __slots__ = ("in_base", "out_base")

    def __init__(self) -> None:
        self.in_base: int | None = None
        self.out_base = 0

    @property
    def anchored(self) -> bool:
        return self.in_base is not None

    def anchor(self, decode_ns: int, out_ns: int = 0) -> None:
        self.in_base, self.out_base = decode_ns, out_ns

    def reset(self) -> None:
        self.in_base = None

    def map(self, pts: int | None, dts: int | None) -> tuple[int, int | None] | None:
        """(pts, dts) on the output timeline; None when not anchored or before the anchor."""
        base = self.in_base
        decode = dts if dts is not None else pts
        if base is None or decode is None or decode < base or pts is None:
            return None
        offset = self.out_base - base
        return pts + offset, (dts + offset if dts is not None else None)


class JumpDetector:
    """Notices when a camera's decode times stop following real time.

    Backwards (decode time lower than the previous frame's) is always a discontinuity: a file
    must never hold non-monotonic timestamps. Forwards, a frame whose decode time advanced
    more than `tolerance_ns` beyond the time that really passed between arrivals is a jump
    (a clock reset, an RTP timestamp glitch). A stall is not a jump: nothing arrives, and
    when frames come back their times have moved on as much as the clock has. Slow drift
    against the wall clock never trips it: each frame is judged against the one before.
    """

    __slots__ = ("_last_arrival", "_last_decode", "tolerance_ns")

    def __init__(self, tolerance_ns: int = JUMP_TOLERANCE_NS) -> None:
        self.tolerance_ns = tolerance_ns
        self._last_decode: int | None = None
        self._last_arrival = 0

    def check(self, decode_ns: int, arrival_ns: int) -> int | None:
        """The jump (signed ns: decode change minus arrival change) or None; then remember."""
        last, last_arrival = self._last_decode, self._last_arrival
        self._last_decode, self._last_arrival = decode_ns, arrival_ns
        if last is None:
            return None
        moved = decode_ns - last
        passed = arrival_ns - last_arrival
        if moved < 0 or moved - passed > self.tolerance_ns:
            return moved - passed
        return None

    def reset(self) -> None:
        self._last_decode = None


class ContinuousTimeline:
    """Camera decode times → one increasing timeline that runs on through reconnects and
    jumps (a browser's SourceBuffer must never see time go back).

    On a discontinuity (time going back by more than a frame, or forward by over 10 s) the
    timeline re-anchors so the next frame follows the last one. Each frame's duration is
    predicted from the previous interval, since the true one is known only when the next
    frame arrives and holding a frame back would add latency.
    """

    __slots__ = ("frame_ns", "in_base", "next_out", "out_base")

    def __init__(self) -> None:
        self.in_base: int | None = None
        self.out_base = 0
        self.next_out = 0  # where the next frame is expected on the output timeline
        self.frame_ns = DEFAULT_FRAME_NS

    def reanchor(self) -> None:
        self.in_base = None

    def place(self, decode_ns: int) -> int:
        if self.in_base is not None:
            out = decode_ns - self.in_base + self.out_base
            if out < self.next_out - self.frame_ns or out > self.next_out + 10 * SECOND:
                self.in_base = None  # time jumped (reconnect, wrap): continue where we were
        if self.in_base is None:
            self.in_base, self.out_base = decode_ns, self.next_out
        out = decode_ns - self.in_base + self.out_base
        previous = self.next_out - self.frame_ns
        if out > previous and out - previous < SECOND:
            self.frame_ns = out - previous  # the last interval predicts the next duration
        self.next_out = out + self.frame_ns
        return out


MIN_STEP_NS = 1_000_000  # no camera sends 1000 frames a second


class Bridge:
    """One track's decode times, carried forward through jumps of the camera's clock.

    A file (or an RTSP reader's stream) must never see time go back, and should not see a
    leap the camera never really took either. When `JumpDetector` says the camera's clock
    jumped (backwards, or forwards beyond what really passed), the track is bridged: from
    that frame on every time is shifted so the frame follows the one before by the last
    frame interval, as if the clock had not jumped. No frame is lost, the composition
    offsets (PTS - DTS) are kept, and the file's time stays in step with real time (the
    camera kept sending; only its clock moved). `adjust` answers the shift to add to the
    frame's PTS and DTS.
    """

    __slots__ = ("detector", "jumps", "last", "shift", "step")

    def __init__(self, tolerance_ns: int = JUMP_TOLERANCE_NS) -> None:
        self.detector = JumpDetector(tolerance_ns)
        self.shift = 0
        self.last: int | None = None  # the previous frame's shifted decode time
        self.step = DEFAULT_FRAME_NS
        self.jumps = 0

    def adjust(self, decode_ns: int, arrival_ns: int) -> int:
        jump = self.detector.check(decode_ns, arrival_ns)
        last = self.last
        if jump is not None and last is not None:
            self.shift = last + self.step - decode_ns
            self.jumps += 1
        shifted = decode_ns + self.shift
        if last is not None and shifted - last < MIN_STEP_NS:
            # a decode time repeated or nearly (the codec timestamper, just after a jump with
            # B-frames, can give a P-frame the next B-frame's time): not a new jump, but a
            # muxer's timescale would make them equal. Moved on by a millisecond, not a frame,
            # so presentation order is kept.
            self.shift += last + MIN_STEP_NS - shifted
            shifted = last + MIN_STEP_NS
        if last is not None and 0 < shifted - last < SECOND:
            self.step = shifted - last
        self.last = shifted
        return self.shift


class WallClock:
    """Output time → wall-clock time for a long recording whose camera clock drifts.

    A session maps its timeline to wall time from its first frame (`anchor`): exact for a
    camera whose clock keeps time. One that runs 1 % fast would put an hour-long recording's
    segment names and index times 36 s off. Each keyframe's arrival (`observe`) is compared
    with the mapping; beyond `tolerance_s` (well above the pump's 0.2 s batches and network
    jitter) the mapping moves to the arrival, so the error stays bounded and segments stay
    contiguous in between.
    """

    __slots__ = ("base_wall", "tolerance_s")

    def __init__(self, tolerance_s: float = 1.0) -> None:
        self.base_wall: float | None = None  # wall time of output time 0
        self.tolerance_s = tolerance_s

    def anchor(self, wall: float, out_ns: int = 0) -> None:
        self.base_wall = wall - out_ns / SECOND

    def observe(self, out_ns: int, wall: float) -> float | None:
        """A frame at `out_ns` arrived at `wall`; the correction made (s), if any."""
        if self.base_wall is None:
            self.anchor(wall, out_ns)
            return None
        error = wall - self.wall_of(out_ns)
        if abs(error) <= self.tolerance_s:
            return None
        self.base_wall += error
        return error

    def wall_of(self, out_ns: int) -> float:
        return (self.base_wall or 0.0) + out_ns / SECOND


class RtpClock:
    """Presentation times for one RTP stream from its own RTP timestamps: the camera's exact
    frame steps, kept in step with the receiver's clock by a slowly steered rate.

    rtspsrc's jitter buffer ("slave" mode) turns RTP timestamps into times on our clock by
    estimating the sender's skew from each packet's arrival. That keeps a drifting camera in
    step, but the estimate moves with every packet, and a camera sends B-frames at their
    decode time, long before they are shown: measured on a B-pyramid stream, consecutive
    frames' presentation times came out 3 to 170 ms apart instead of 40. The jitter buffer's
    other modes take RTP times as they are, but "none" breaks on a camera clock jumping back
    (measured: a -300 s jump became a time below zero and the recording stopped), and
    neither follows a drifting camera, so its lost-packet timers (UDP) and everything timed
    on our clock would fall behind or wait for a drift that grows without end.

    So each time is a straight line through the RTP times: `base_ns + ticks * (1 + rate)`,
    with `rate` (a fraction, the camera clock's error as we see it) steered from the distance
    between the line and the jitter buffer's time (`reference_ns`), averaged over
    `smoothing` frames and corrected over `horizon_ns`. `rate` stays within `max_rate`
    (200 ppm: a 40 ms step is then at most 8 µs, under one 90 kHz tick, off the camera's
    own) and moves by a twentieth of that per frame, so frames a reorder window apart lie
    on the same line to a fraction of a tick and B-frames keep their exact spacing. A
    camera off by 100 ppm (a common crystal) is followed with ~6 ms of lag and its steps
    are 3600.36 ticks. One whose clock is far off (the average distance beyond
    `catch_up_ns`) is caught up with over 2 s, at up to `fast_rate` (2.5 %: steps up to
    1 ms off, as far off as its clock is), until the distance is back under a third of
    that. A distance beyond `snap_ns` is a jump of the camera's clock (which the jitter
    buffer has already resynchronised to): the line restarts there and the jump is
    counted. Audio gets the same treatment, so both tracks follow alike and stay in sync.
    """

    __slots__ = ("average", "base_ext", "base_ns", "catch_up_ns", "ext", "fast",
                 "fast_horizon_ns", "fast_rate", "horizon_ns", "jumps", "last_rtp",
                 "max_rate", "rate", "scale", "smoothing", "snap_ns")

    def __init__(self, clock_rate: int, max_rate: float = 200e-6, fast_rate: float = 0.025,
                 catch_up_ns: int = SECOND // 4, snap_ns: int = SECOND,
                 smoothing: int = 64, horizon_ns: int = 60 * SECOND) -> None:
        self.scale = SECOND / clock_rate  # ns per RTP tick
        self.max_rate, self.fast_rate = max_rate, fast_rate
        self.catch_up_ns, self.snap_ns = catch_up_ns, snap_ns
        self.smoothing, self.horizon_ns = smoothing, horizon_ns
        self.fast_horizon_ns = 2 * SECOND
        self.fast = False
        self.last_rtp: int | None = None
        self.ext = 0  # the RTP timestamp unwrapped (64-bit, may go below 0)
        self.base_ext = 0  # the line: time base_ns at RTP time base_ext, slope 1 + rate
        self.base_ns: int | None = None
        self.rate = 0.0
        self.average = 0.0  # the line's distance from the reference, averaged (ns)
        self.jumps: list[int] = []  # each jump of the camera's clock (ns), until taken

    def _line(self, ext: int) -> int:
        return (self.base_ns or 0) + round((ext - self.base_ext) * self.scale * (1 + self.rate))

    def pts(self, rtp_time: int, reference_ns: int) -> int:
        """The time of a packet with this 32-bit RTP timestamp; `reference_ns` is the time
        the jitter buffer gave it. Packets of one frame share their RTP time and get one
        time."""
        last = self.last_rtp
        self.last_rtp = rtp_time
        if last is None or self.base_ns is None:
            self.ext = rtp_time
            self._restart(reference_ns)
        elif rtp_time != last:
            self.ext += ((rtp_time - last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            self._follow(reference_ns)
        return max(0, self._line(self.ext))

    def _restart(self, reference_ns: int) -> None:
        self.base_ext, self.base_ns = self.ext, reference_ns
        self.rate = self.average = 0.0
        self.fast = False

    def _follow(self, reference_ns: int) -> None:
        here = self._line(self.ext)
        error = reference_ns - here
        if abs(error) > self.snap_ns:
            self.jumps.append(-error)
            self._restart(reference_ns)
            return
        self.average += (error - self.average) / self.smoothing
        distance = abs(self.average)
        # catching up: entered beyond catch_up_ns, left below a third of it (no dithering)
        self.fast = distance > self.catch_up_ns or (self.fast and distance > self.catch_up_ns / 3)
        limit, horizon = ((self.fast_rate, self.fast_horizon_ns) if self.fast
                          else (self.max_rate, self.horizon_ns))
        wanted = max(-limit, min(limit, self.average / horizon))
        step = (self.fast_rate if abs(self.rate) > self.max_rate or self.fast
                else self.max_rate) / 20
        self.base_ext, self.base_ns = self.ext, here  # the new slope starts where we are
        self.rate += max(-step, min(step, wanted - self.rate))
