"""When recording fails and when it works again: the outage, its gap, and the time it lost.

A full disk makes every session fail, and a retry on a disk that is still full fails again.
Reporting each failure and each retry made `recording_error` flap and left an empty segment
per retry. Here an outage is one thing with a start and an end, whatever happens in between:
it begins with the first failure, goes on through every retry that fails, and ends only when
data reaches the disk again (or recording is stopped). The recorder reports the two changes,
once each, and stores the gap when it ends.

No GStreamer and no clock of its own: the recorder passes wall-clock times in, so the rules
are tested with a fake clock. Thread-safe: the GStreamer thread drives it, the metrics scrape
reads it, the database thread corrects it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

RETRY_S = 2.0  # after a failed session, the first retry
MAX_RETRY_S = 10.0  # retries that keep failing back off up to this
SPACE_CHECK_S = 0.5  # while the disk is full: how often free space is looked at (statvfs)
RESUME_FLOOR_BYTES = 256 * 1024  # never resume on less free space than this...
RESUME_SECONDS = 5.0  # ...or than this much of the stream
HEARTBEAT_S = 10.0  # an open gap's stored end is moved on this often (a crash keeps it)


@dataclass(frozen=True)
class Outage:
    """Recording has stopped working, for `reason`, since `start` (wall clock).

    `start` is the last frame handed to the failed session: the file may end a little before
    (what was still buffered when the write failed), which only the file can tell; the index
    refines it from the segments of the session that began at `session_start`.
    """

    reason: str  # disk_full | write_error
    start: float
    session_start: float | None = None


@dataclass(frozen=True)
class Gap:
    """A closed outage: nothing was recorded from `start` to `end` because of `reason`."""

    reason: str
    start: float
    end: float
    session_start: float | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Change:
    """`recording_error` changed from `previous` to `error`: report it (log, WebSocket)."""

    error: str | None
    previous: str | None
    started: Outage | None = None  # the outage that began, if one did
    ended: Gap | None = None  # the gap that closed, if one did


def resume_threshold(min_free: int | None, bytes_per_second: float) -> int:
    """Free bytes needed before a disk that was full is written again.

    A retry as soon as a few kilobytes are free fills them and fails again at once; asking
    for a few seconds of the stream (and never less than the floor or `min_free`) means a
    resumed segment has room to hold something playable.
    """
    return max(min_free or 0, RESUME_FLOOR_BYTES, int(bytes_per_second * RESUME_SECONDS))


class OutageTracker:
    """One recorder's outages: the current one, and the seconds lost to past ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: Outage | None = None
        self._lost: dict[str, float] = {}
        self._failures = 0  # failed sessions in the current outage (for the back-off)
        self._heartbeat_at = 0.0

    @property
    def error(self) -> str | None:
        current = self.current
        return current.reason if current is not None else None

    def failed(self, reason: str, last_recorded: float, now: float,
               session_start: float | None = None) -> Change | None:
        """A session failed, or could not open. A Change when an outage begins (or changes
        reason); None while the same outage simply goes on."""
        with self._lock:
            self._failures += 1
            current = self.current
            if current is not None and current.reason == reason:
                return None
            ended = self._close_locked(now) if current is not None else None
            start = last_recorded if ended is None else now
            self.current = Outage(reason, min(start, now),
                                  session_start if ended is None else None)
            self._failures = 1
            self._heartbeat_at = now + HEARTBEAT_S
            return Change(reason, current.reason if current else None, self.current, ended)

    def refused(self, reason: str, now: float) -> Change | None:
        """A session was not even opened (too little free space): an outage from `now` if
        none is going on. Not a failed attempt: the back-off does not grow."""
        with self._lock:
            if self.current is not None and self.current.reason == reason:
                return None
        change = self.failed(reason, now, now)
        with self._lock:
            self._failures = 0
        return change

    def resumed(self, first_frame: float) -> Change | None:
        """Data reached the disk again, from a session whose first frame is `first_frame`."""
        return self._end(first_frame)

    def stopped(self, now: float) -> Change | None:
        """Recording was stopped during an outage: nothing more is being lost after `now`."""
        return self._end(now)

    def _end(self, end: float) -> Change | None:
        with self._lock:
            current = self.current
            if current is None:
                return None
            return Change(None, current.reason, None, self._close_locked(end))

    def _close_locked(self, end: float) -> Gap:
        current = self.current
        assert current is not None
        gap = Gap(current.reason, current.start, max(end, current.start), current.session_start)
        self._lost[gap.reason] = self._lost.get(gap.reason, 0.0) + gap.seconds
        self.current = None
        self._failures = 0
        return gap

    def retry_delay(self) -> float:
        """How long after a failed session to try again: 2 s, doubling while retries fail."""
        with self._lock:
            return min(RETRY_S * 2 ** max(0, self._failures - 1), MAX_RETRY_S)

    def lost_seconds(self, resumable_from: float) -> dict[str, float]:
        """Seconds of recording lost, by reason: closed gaps plus what the ongoing outage has
        lost for certain. `resumable_from` is where a session opened now would begin (the
        first frame after the outage's start still in the pre-event buffer, else now), so the
        figure never goes down, not even when the outage ends."""
        with self._lock:
            lost = dict(self._lost)
            current = self.current
            if current is not None:
                lost[current.reason] = (lost.get(current.reason, 0.0)
                                        + max(0.0, resumable_from - current.start))
            return lost

    def add_lost(self, reason: str, seconds: float) -> None:
        """The gap began earlier than first thought (the index read the cut file)."""
        if seconds > 0:
            with self._lock:
                self._lost[reason] = self._lost.get(reason, 0.0) + seconds

    def heartbeat_due(self, now: float) -> bool:
        """True every HEARTBEAT_S during an outage: time to store that it still goes on."""
        with self._lock:
            if self.current is None or now < self._heartbeat_at:
                return False
            self._heartbeat_at = now + HEARTBEAT_S
            return True
