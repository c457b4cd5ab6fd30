"""The recording timeline's service side: the service's runs, the timeline of a range, and the
lost seconds that only the timeline can tell.

The service calls `started` once (after reconcile, before streams start), `heartbeat` every
HEARTBEAT_S while it runs and `stopped` at a clean shutdown; the API asks for `timeline`.
All of them run on the database thread; `lost_seconds` on any thread (the metrics scrape).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from streamwarden.db import Database
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.history import RECORDING, History, load_facts
from streamwarden.recording.lost_time import CONTEXT_S, LostTime
from streamwarden.recording.timeline import SERVICE_NOT_RUNNING, Timeline, build, downtime_lost

log = logging.getLogger("streamwarden.recording")

HEARTBEAT_S = 5.0  # a service that dies is known to have run until at most this before
SHUTDOWN_MARGIN_S = 10.0  # a recording stopped this close to a run's end was stopped by it
SETTLE_S = 10.0  # lost seconds are read this long after a camera outage would be noticed


class TimelineKeeper:
    def __init__(self, db: Database, gaps: GapStore, history: History):
        self.db = db
        self.gaps = gaps
        self.history = history
        self.lost = LostTime()
        self.run_id: int | None = None
        self.run_start: float | None = None

    def started(self, now: float) -> None:
        """A run begins: the streams that were recording when the last one ended lost the
        time in between (counted now, once)."""
        run = self.history.run_started(now)
        self.run_id, self.run_start = run.run_id, run.start
        if run.previous_end is None:
            return
        for stream_id in self.history.streams_recording_at(run.previous_end, SHUTDOWN_MARGIN_S):
            wanted = self.history.periods(stream_id, RECORDING,
                                          run.previous_end - SHUTDOWN_MARGIN_S, run.previous_end)
            lost = downtime_lost(run.previous_end, now, wanted, SHUTDOWN_MARGIN_S)
            self.lost.add(stream_id, SERVICE_NOT_RUNNING, lost)
        log.info("service run started; the last one ended %.1f s ago", now - run.previous_end,
                 extra={"event": "service_run", "down_seconds": now - run.previous_end})

    def heartbeat(self, now: float, streams: Iterable[tuple[str, float]]) -> None:
        """The run goes on at `now`; count each stream's settled losses. `streams`: (id,
        source timeout) of the running streams."""
        if self.run_id is None or self.run_start is None:
            return
        self.history.run_heartbeat(self.run_id, now)
        for stream_id, timeout in streams:
            window = self.lost.window(stream_id, self.run_start, now - timeout - SETTLE_S)
            if window is not None:
                start, end = window
                timeline = self.timeline(stream_id, start - CONTEXT_S, end, now)
                self.lost.count(stream_id, timeline, start, end)

    def stopped(self, stopping_since: float) -> None:
        """A clean shutdown, which began at `stopping_since`."""
        if self.run_id is not None:
            self.history.run_stopped(self.run_id, stopping_since)

    def timeline(self, stream_id: str, start: float, end: float, now: float) -> Timeline:
        """The stream's timeline of [start, end) (end at most `now`)."""
        end = min(end, now)
        facts = load_facts(self.db, self.gaps, self.history, stream_id, start, end, self.run_id)
        return build(facts, start, end, now)

    def lost_seconds(self, stream_id: str) -> dict[str, float]:
        return self.lost.seconds(stream_id)
