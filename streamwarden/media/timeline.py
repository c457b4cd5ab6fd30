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
