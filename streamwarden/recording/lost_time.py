"""Seconds of wanted footage lost, per stream and reason, for the reasons the recorder cannot
count itself: `camera_offline`, `discontinuity` (read from the timeline) and
`service_not_running` (counted once at start-up). The recorder counts `disk_full` and
`write_error` as its outages go (outage.py); the timeline gives those moments those reasons
first (timeline.py's priorities), so no second is counted under two reasons.

Counted once: each stream's timeline is read in consecutive windows, each starting where the
last one ended, and only the seconds inside the window are added. A window ends some time
before now (`lag`), once the facts about it are settled (a camera outage is known only
`timeout` after the camera's last frame). Pure and thread-safe: the database thread counts,
the metrics scrape reads.
"""

from __future__ import annotations

import threading

from streamwarden.recording.timeline import CAMERA_OFFLINE, DISCONTINUITY, Timeline

FROM_TIMELINE = (CAMERA_OFFLINE, DISCONTINUITY)
CONTEXT_S = 30.0  # read this much before a window too: a gap's reason can depend on its edges


class LostTime:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, dict[str, float]] = {}
        self._counted_until: dict[str, float] = {}

    def add(self, stream_id: str, reason: str, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                lost = self._seconds.setdefault(stream_id, {})
                lost[reason] = lost.get(reason, 0.0) + seconds

    def window(self, stream_id: str, since: float, upto: float) -> tuple[float, float] | None:
        """The next window to count for the stream, from where the last one ended (or
        `since`) to `upto`; None if that is empty."""
        with self._lock:
            start = self._counted_until.get(stream_id, since)
        return (start, upto) if upto > start else None

    def count(self, stream_id: str, timeline: Timeline, start: float, end: float) -> None:
        """Add the timeline's losses within [start, end] (a window from `window`)."""
        lost = timeline.lost(start, end)
        with self._lock:
            if self._counted_until.get(stream_id, start) > start:
                return  # counted already (a window is never counted twice)
            self._counted_until[stream_id] = end
            totals = self._seconds.setdefault(stream_id, {})
            for reason in FROM_TIMELINE:
                if reason in lost:
                    totals[reason] = totals.get(reason, 0.0) + lost[reason]

    def seconds(self, stream_id: str) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds.get(stream_id, {}))
