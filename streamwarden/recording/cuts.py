"""Where a recording session's segments end: at the first keyframe at or after each
segment's start + `segment_duration`, never before it.

splitmuxsink's own `max-size-time` does the opposite (it ends a file at the last keyframe
that keeps it *under* the limit: 8 s files for "10s" with a 2 s GOP), so the session turns it
off and, seeing every keyframe as it pushes it, asks splitmuxsink to cut at the target this
rule names (`split-at-running-time`). splitmuxsink then starts the new file with the first
GOP whose start reaches it, so a cut is always on a keyframe and no frame is lost or doubled.

Plain integers (running time in ns), no GStreamer: tested with hand-made keyframe times.
"""

from __future__ import annotations

# Camera timestamps wobble (the RTP jitter buffer's skew correction; the first frame of a
# connection is often tens of ms off): a keyframe this close before a target still counts as
# on it, or a 2 s GOP would give 12 s files for "10s" whenever a keyframe came 1 ms early.
SPLIT_TOLERANCE_NS = 100_000_000


class SegmentCuts:
    """The next cut target, moved on by each keyframe that reaches the current one."""

    __slots__ = ("next_cut", "segment_ns", "tolerance_ns")

    def __init__(self, segment_ns: int, tolerance_ns: int = SPLIT_TOLERANCE_NS) -> None:
        self.segment_ns = segment_ns
        self.tolerance_ns = tolerance_ns
        self.next_cut: int | None = None  # running time: a keyframe from here opens a file

    def keyframe(self, running_time: int) -> int | None:
        """Before a keyframe at `running_time` is pushed: a new target to ask splitmuxsink
        for, or None. The first keyframe, and each that reaches the target (it opens the new
        segment), set the next one `segment_duration` after it. Asked at once, the cut is
        queued long before splitmuxsink could reach that keyframe, however fast frames come
        (a pre-roll burst)."""
        if self.next_cut is not None and running_time < self.next_cut:
            return None
        self.next_cut = max(0, running_time + self.segment_ns - self.tolerance_ns)
        return self.next_cut
