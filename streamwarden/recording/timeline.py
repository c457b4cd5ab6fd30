"""A stream's recording timeline: what segments cover, and for every other moment, why not.

Pure: stored facts in (segments, service runs, periods when recording was requested or the
camera was not streaming, stored gaps and discontinuities), spans and gaps out, covering
the requested range exactly. The database side (history.py) only loads the facts; the rules
are read and tested here (tests/unit/test_recording_timeline.py) on hand-made rows.

Why a moment is not covered, first rule that applies wins:

1. `deleted`: retention removed the footage (it existed, whatever else was going on).
2. `service_not_running`: no service run covers it.
3. `recording_off`: recording was not requested (neither continuous, manual nor an event).
4. `disk_full`, `write_error`: a recorder outage (recording/outage.py) stored as a gap.
5. `camera_offline`: recording was requested but the camera was not streaming.
6. `discontinuity`: a timestamp discontinuity reported within `slack` of the hole.
7. `unknown`: none of the above (it should not happen; the tests check it does not).

The facts are written by different threads from different clocks (a segment's end is its
last frame mapped to wall time, a camera outage starts at the supervisor's last frame, a
session after a reconnect starts at the next keyframe), so their edges differ by a frame to
a GOP. Two tolerances absorb that, never an explained loss: a hole of at most `contiguous`
between segments that nothing explains is part of the span, and an unexplained piece of at
most `slack` next to an explained gap is part of that gap (the GOP before recording resumes
after an outage belongs to the outage).

A segment still being written covers up to `now`, except where the camera is known to be
offline or the recorder in an outage: its session stays open through a camera outage and
only its final end (when it closes) says where its footage stops.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import portion

DELETED = "deleted"
SERVICE_NOT_RUNNING = "service_not_running"
RECORDING_OFF = "recording_off"
DISK_FULL = "disk_full"
WRITE_ERROR = "write_error"
CAMERA_OFFLINE = "camera_offline"
DISCONTINUITY = "discontinuity"
UNKNOWN = "unknown"
REASONS = (DELETED, SERVICE_NOT_RUNNING, RECORDING_OFF, DISK_FULL, WRITE_ERROR, CAMERA_OFFLINE,
           DISCONTINUITY, UNKNOWN)  # in priority order
# Reasons for which footage that was wanted is lost (what the lost-seconds counter counts).
LOSSES = (CAMERA_OFFLINE, DISCONTINUITY, DISK_FULL, WRITE_ERROR, SERVICE_NOT_RUNNING)

CONTIGUOUS_S = 0.5
SLACK_S = 2.0
_COVERED = "covered"
# What an open segment cannot cover: the recorder got nothing (or wrote nothing) then.
_NOT_IN_OPEN_SEGMENT = (CAMERA_OFFLINE, DISK_FULL, WRITE_ERROR)


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float | None  # None: still being written
    status: str = "complete"


@dataclass(frozen=True)
class Period:
    """A time something held: a service run, recording requested, the camera offline."""

    start: float
    end: float | None  # None: still going on


@dataclass(frozen=True)
class Mark:
    """A stored gap (`disk_full`, `write_error`, `deleted`; `end` None while open) or a
    discontinuity (a moment: `end` == `start`)."""

    reason: str
    start: float
    end: float | None


@dataclass(frozen=True)
class Facts:
    segments: Sequence[Segment] = ()
    runs: Sequence[Period] = ()
    wanted: Sequence[Period] = ()
    offline: Sequence[Period] = ()
    marks: Sequence[Mark] = ()


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Gap:
    start: float
    end: float
    reason: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Timeline:
    start: float
    end: float
    spans: tuple[Span, ...]
    gaps: tuple[Gap, ...]

    def lost(self, start: float | None = None, end: float | None = None) -> dict[str, float]:
        """Seconds of the gaps whose reason is a loss, by reason, within [start, end]."""
        lo = self.start if start is None else start
        hi = self.end if end is None else end
        lost: dict[str, float] = {}
        for gap in self.gaps:
            seconds = min(gap.end, hi) - max(gap.start, lo)
            if gap.reason in LOSSES and seconds > 0:
                lost[gap.reason] = lost.get(gap.reason, 0.0) + seconds
        return lost


def _interval(start: float, end: float | None, now: float) -> portion.Interval:
    return portion.closedopen(start, now if end is None else end)


def _union(intervals: Iterable[portion.Interval]) -> portion.Interval:
    out = portion.empty()
    for interval in intervals:
        out |= interval
    return out


def _painted(facts: Facts, whole: portion.Interval, now: float) -> portion.IntervalDict:
    """Every moment of the range with the strongest explanation it has (lowest first, so
    the stronger ones paint over them), `unknown` where there is none."""
    paint = portion.IntervalDict()
    paint[whole] = UNKNOWN
    marks: dict[str, list[portion.Interval]] = {}
    for mark in facts.marks:
        if mark.reason != DISCONTINUITY:
            marks.setdefault(mark.reason, []).append(_interval(mark.start, mark.end, now))
    layers = [
        (CAMERA_OFFLINE, _union(_interval(p.start, p.end, now) for p in facts.offline)),
        (WRITE_ERROR, _union(marks.get(WRITE_ERROR, []))),
        (DISK_FULL, _union(marks.get(DISK_FULL, []))),
        (RECORDING_OFF, whole - _union(_interval(p.start, p.end, now) for p in facts.wanted)),
        (SERVICE_NOT_RUNNING, whole - _union(_interval(p.start, p.end, now) for p in facts.runs)),
        (DELETED, _union(marks.get(DELETED, []))),
    ]
    for reason, where in layers:
        if not (where & whole).empty:
            paint[where & whole] = reason
    return paint


def _covered(facts: Facts, paint: portion.IntervalDict, whole: portion.Interval, now: float,
             contiguous: float, moments: list[float]) -> portion.Interval:
    """What segments cover: finished ones as they are, open ones up to now less what the
    recorder cannot have had, and unexplained holes of at most `contiguous` between them."""
    closed = _union(_interval(s.start, s.end, now) for s in facts.segments
                    if s.end is not None and s.status != "corrupt")
    lost_while_open = _union(paint.find(reason) for reason in _NOT_IN_OPEN_SEGMENT)
    still_open = _union(_interval(s.start, None, now) for s in facts.segments if s.end is None)
    covered = (closed | (still_open - lost_while_open)) & whole
    unexplained = paint.find(UNKNOWN)
    for left, right in itertools.pairwise(list(covered)):
        hole = portion.closedopen(left.upper, right.lower)
        if (right.lower - left.upper <= contiguous and hole in unexplained
                and not any(hole.lower <= m <= hole.upper for m in moments)):
            covered |= hole
    return covered


def _pieces(paint: portion.IntervalDict) -> list[tuple[float, float, str]]:
    """(start, end, reason) of every atomic piece, in time order, same reasons merged."""
    pieces = sorted((atom.lower, atom.upper, reason) for interval, reason in paint.items()
                    for atom in interval if not atom.empty)
    merged: list[tuple[float, float, str]] = []
    for start, end, reason in pieces:
        if merged and merged[-1][2] == reason and merged[-1][1] >= start:
            merged[-1] = (merged[-1][0], end, reason)
        else:
            merged.append((start, end, reason))
    return merged


def _explain_unknown(pieces: list[tuple[float, float, str]], moments: list[float],
                     slack: float) -> list[tuple[float, float, str]]:
    """Unexplained pieces near a discontinuity are that discontinuity's; short ones next to
    a gap belong to that gap (the earlier one first)."""
    out = list(pieces)
    for i, (start, end, reason) in enumerate(out):
        if reason == UNKNOWN and any(start - slack <= m <= end + slack for m in moments):
            out[i] = (start, end, DISCONTINUITY)
    for i, (start, end, reason) in enumerate(out):
        if reason != UNKNOWN or end - start > slack:
            continue
        neighbours = [out[j][2] for j in (i - 1, i + 1) if 0 <= j < len(out)]
        explained = [r for r in neighbours if r not in (UNKNOWN, _COVERED)]
        if explained:
            out[i] = (start, end, explained[0])
    return _merge(out)


def _merge(pieces: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    merged: list[tuple[float, float, str]] = []
    for piece in pieces:
        if merged and merged[-1][2] == piece[2]:
            merged[-1] = (merged[-1][0], piece[1], piece[2])
        else:
            merged.append(piece)
    return merged


def build(facts: Facts, start: float, end: float, now: float, contiguous: float = CONTIGUOUS_S,
          slack: float = SLACK_S) -> Timeline:
    """The timeline of [start, end): spans and gaps that tile it exactly, in time order.
    Open facts (a segment being written, an open gap or period, the current run) last until
    `now`."""
    if end <= start:
        return Timeline(start, start, (), ())
    whole = portion.closedopen(start, end)
    moments = sorted(m.start for m in facts.marks if m.reason == DISCONTINUITY)
    paint = _painted(facts, whole, now)
    covered = _covered(facts, paint, whole, now, contiguous, moments)
    if not covered.empty:
        paint[covered] = _COVERED
    pieces = _without_slivers(_explain_unknown(_pieces(paint), moments, slack))
    spans = tuple(Span(s, e, _segments_in(facts.segments, s, e, now))
                  for s, e, reason in pieces if reason == _COVERED)
    gaps = tuple(Gap(s, e, reason) for s, e, reason in pieces if reason != _COVERED)
    return Timeline(start, end, spans, gaps)


SLIVER_S = 1e-6  # the API's times have microseconds: a shorter piece is a rounding artefact


def _without_slivers(pieces: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Pieces shorter than a microsecond given to a neighbour (the one before, else the one
    after): a range asked for in ISO microseconds around a run's start would otherwise open
    with a 0.4 µs `service_not_running` gap."""
    if len(pieces) < 2:
        return pieces
    kept: list[tuple[float, float, str]] = []
    for piece in pieces:
        if piece[1] - piece[0] >= SLIVER_S:
            if kept and kept[-1][2] == piece[2]:
                kept[-1] = (kept[-1][0], piece[1], piece[2])
            else:
                kept.append(piece)
        elif kept:
            kept[-1] = (kept[-1][0], piece[1], kept[-1][2])
    if not kept:
        return pieces
    first = pieces[0]
    if kept[0][0] > first[0]:  # slivers at the very start: the first kept piece takes them
        kept[0] = (first[0], kept[0][1], kept[0][2])
    return kept


def _segments_in(segments: Sequence[Segment], start: float, end: float,
                 now: float) -> tuple[Segment, ...]:
    return tuple(s for s in segments if s.status != "corrupt" and s.start < end
                 and (now if s.end is None else s.end) > start)


def downtime_lost(previous_end: float | None, run_start: float, wanted: Sequence[Period],
                  margin: float) -> float:
    """Seconds lost to the service not running before `run_start`, for a stream whose
    recording was requested when the last run ended (`wanted`: its periods; one still open,
    or closed within `margin` of that end by the shutdown itself). 0 for a first run."""
    if previous_end is None or run_start <= previous_end:
        return 0.0
    recording_at_end = any(p.start <= previous_end and (p.end is None
                                                        or p.end >= previous_end - margin)
                           for p in wanted)
    return run_start - previous_end if recording_at_end else 0.0
