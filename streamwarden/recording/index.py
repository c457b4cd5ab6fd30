"""Segment and outage events → the recordings index and the gaps table, off the GStreamer thread.

The recorder reports each segment as it opens (so a crash leaves a row saying `recording`)
and as it closes; the database thread does the I/O (file size, probing, SQL). A segment cut
by an error is settled at once (reconcile.settle_segment): kept with the duration that
really plays, or removed if nothing in it plays, so no row claims a segment it does not have.
An outage's gap is stored when it begins and closed when it ends (recording/gaps.py); when
recording is requested and stopped, and the camera's timestamp discontinuities, are stored for
the recording timeline (history.py, gaps.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from streamwarden.db import Database
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.history import RECORDING, History
from streamwarden.recording.listener import SegmentListener
from streamwarden.recording.outage import Gap, Outage
from streamwarden.recording.reconcile import settle_segment

log = logging.getLogger("streamwarden.recording")

# A session's first segment starts within this of the session's first frame.
_SESSION_SLACK_S = 0.5


class RecordingIndex(SegmentListener):
    def __init__(self, db: Database, on_change=None, emit=None, gaps: GapStore | None = None,
                 history: History | None = None):
        self.db = db
        self.gaps = gaps if gaps is not None else GapStore(db)
        self.history = history if history is not None else History(db)
        self._on_change = on_change
        self._emit = emit or (lambda event: None)

    def _submit(self, fn: Callable[..., object], *args: object) -> None:
        """Queue work on the database thread; a failure (the database on the full disk too)
        is logged, never lost silently in a future nobody reads."""
        def run() -> None:
            try:
                fn(*args)
            except sqlite3.Error as exc:  # "database or disk is full", typically
                log.error("recordings index update failed: %s", exc)
            except Exception:
                log.exception("recordings index update failed")

        self.db.submit(run)

    def segment_opened(self, stream_id: str, path: Path, start_wall: float, reason: str) -> None:
        self._submit(self.db.segment_opened, stream_id, str(path), start_wall, reason)
        log.info("stream %s: segment opened %s", stream_id, path,
                 extra={"stream_id": stream_id, "event": "segment_opened", "path": str(path)})

    def segment_closed(self, stream_id: str, path: Path, end_wall: float,
                       cut: bool = False) -> None:
        self._submit(self._close, stream_id, path, end_wall, cut)
        log.info("stream %s: segment %s %s", stream_id, "cut" if cut else "closed", path,
                 extra={"stream_id": stream_id, "event": "segment_closed", "path": str(path),
                        "cut": cut})

    def _close(self, stream_id: str, path: Path, end_wall: float, cut: bool) -> None:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = None
        self.db.segment_closed(str(path), end_wall, size)
        row = self.db.recording_by_path(str(path))
        if row is None:  # its row could not be written; the next start-up indexes the file
            return
        if cut or not size:
            outcome = settle_segment(self.db, row, keep_unplayable=False)
            log.warning("stream %s: segment %s %s", stream_id, path, outcome,
                        extra={"stream_id": stream_id, "event": "segment_settled",
                               "path": str(path), "outcome": outcome})
            row = self.db.recording_by_path(str(path))
        if row is not None:
            self._emit({"type": "segment_closed", "stream_id": stream_id,
                        "recording_id": row.id, "duration": row.duration, "bytes": row.bytes,
                        "path": row.path, "start": row.start_ts, "end": row.end_ts,
                        "status": row.status})
        if self._on_change is not None:
            self._on_change()

    # ---- the timeline's facts --------------------------------------------------------------

    def recording_changed(self, stream_id: str, reason: str | None, wall: float) -> None:
        if reason is not None:
            self._submit(self.history.period_started, stream_id, RECORDING, wall)
        else:
            self._submit(self.history.period_ended, stream_id, RECORDING, wall)

    def discontinuity(self, stream_id: str, wall: float, jump_seconds: float) -> None:
        self._submit(self.gaps.moment, stream_id, wall, "discontinuity")

    # ---- outages ---------------------------------------------------------------------------

    def outage_started(self, stream_id: str, outage: Outage) -> None:
        self._submit(self.gaps.opened, stream_id, outage.start, outage.reason)

    def outage_ongoing(self, stream_id: str, now: float) -> None:
        self._submit(self.gaps.ongoing, stream_id, now)

    def outage_ended(self, stream_id: str, gap: Gap,
                     began_earlier: Callable[[float], None]) -> None:
        def store() -> None:
            start = self._recorded_until(stream_id, gap)
            self.gaps.closed(stream_id, start, gap.end, gap.reason)
            began_earlier(gap.start - start)

        self._submit(store)

    def _recorded_until(self, stream_id: str, gap: Gap) -> float:
        """Where recording really stopped: the end of what plays in the cut session's segments
        (settled before this runs: the database thread keeps the order), not the last frame
        handed to it. The segments of the session only, so a gap never reaches further back,
        and not those of the session that resumed (indexed already when the ring replayed the
        whole outage: it starts where the outage ends, which can be the outage's own start)."""
        if gap.session_start is None:
            return gap.start
        since = gap.session_start - _SESSION_SLACK_S
        ends = [r.end_ts for r in self.db.recordings(stream_id, since, gap.start, limit=10**6)
                if since <= r.start_ts < gap.start and r.end_ts is not None
                and r.status != "corrupt"]
        return min(gap.start, max(ends, default=gap.session_start))
