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
    """Presentation times for one RTP stream from its own RTP timestamps, kept in step with
    the receiver's clock.

    rtspsrc's jitter buffer ("slave" mode) turns RTP timestamps into times on our clock by
    estimating the sender's skew from each packet's arrival. That keeps a drifting camera in
    step, but the estimate moves with every packet, and a camera sends B-frames at their
    decode time, long before they are shown: measured on a B-pyramid stream, consecutive
    frames' presentation times came out 3 to 170 ms apart instead of 40, enough to swap
    frames in display order. The jitter buffer's other modes take RTP times as they are
    and then stall for seconds on a lost packet once the camera's clock has drifted.

    So each frame's time is its RTP time (exact spacing) plus an offset that follows the
    jitter buffer's time (`reference_ns`) as a slow average: 1/`smoothing` of the distance
    per frame, at most `max_step_ns` (so frames a reorder window apart, 4 frames, are never
    more than 4 ms off their true spacing, and never swap). A drift is followed (1 % is
    0.4 ms per frame at 25 fps: the offset lags it by ~25 ms), the estimate's noise is not,
    and the jitter buffer's own swings in its first seconds are followed slowly (measured:
    15 % of real time for a moment). Audio gets the same treatment, so both tracks follow
    their jitter buffers alike and stay in sync. An offset more than
    `snap_ns` away is a jump of the camera's clock (which the jitter buffer has already
    resynchronised to): it is taken at once and counted.
    """

    __slots__ = ("ext", "jumps", "last_rtp", "max_step_ns", "offset", "rate", "smoothing",
                 "snap_ns")

    def __init__(self, clock_rate: int, max_step_ns: int = 1_000_000,
                 snap_ns: int = SECOND, smoothing: int = 64) -> None:
        self.rate = clock_rate
        self.smoothing = smoothing
        self.max_step_ns = max_step_ns
        self.snap_ns = snap_ns
        self.last_rtp: int | None = None
        self.ext = 0  # the RTP timestamp unwrapped (64-bit, may go below 0)
        self.offset: int | None = None
        self.jumps: list[int] = []  # each jump of the camera's clock (ns), until taken

    def pts(self, rtp_time: int, reference_ns: int) -> int:
        """The time of a packet with this 32-bit RTP timestamp; `reference_ns` is the time
        the jitter buffer gave it. Packets of one frame share their RTP time and get one
        time."""
        last = self.last_rtp
        if last is None:
            self.ext = rtp_time
        elif rtp_time != last:
            self.ext += ((rtp_time - last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        raw = self.ext * SECOND // self.rate
        if last is None or rtp_time != last:
            self._follow(reference_ns - raw)
        self.last_rtp = rtp_time
        return max(0, raw + (self.offset or 0))

    def _follow(self, target: int) -> None:
        offset = self.offset
        if offset is None:
            self.offset = target
            return
        error = target - offset
        if abs(error) > self.snap_ns:
            self.jumps.append(-error)
            self.offset = target
        else:
            step = self.max_step_ns
            self.offset = offset + max(-step, min(step, error // self.smoothing))
