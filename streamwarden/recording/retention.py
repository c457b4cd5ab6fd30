"""Storage limits: delete by age (`retention`, `event_retention`) and by total size
(`max_size`). Which segments and event rows go is `retention_rule.plan`'s decision (pure, in
tiers: continuous footage before event footage, never an open event's); this module reads its
facts from the database and carries it out.

Runs on the database thread, so a file and its index row go in the same step: the file is
removed first, then the row (a crash in between leaves a row whose file is gone, which the
next reconciliation drops). Segments still being written are never touched. What it deletes
is stored as a `deleted` gap (gaps.py), so the recording timeline says where footage went.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from streamwarden.db import Database, RecordingRow
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.retention_rule import EventSpan, Limits, Padding, Segment, plan

log = logging.getLogger("streamwarden.recording")


def delete_segment(db: Database, row) -> int:
    """Remove a segment's file, then its row (and the folders it leaves empty); 1 if done."""
    try:
        Path(row.path).unlink(missing_ok=True)
    except OSError as exc:
        log.error("cannot delete %s: %s", row.path, exc)
        return 0
    db.delete_recording(row.id)
    _remove_empty_dirs(Path(row.path).parent)
    return 1


def _remove_empty_dirs(directory: Path) -> None:
    for folder in (directory, directory.parent):
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            return


def _expire(db: Database, row: RecordingRow, gaps: GapStore | None) -> int:
    """Delete a segment for a storage limit, and say so in the timeline."""
    if not delete_segment(db, row):
        return 0
    if gaps is not None:
        gaps.deleted(row.stream_id, row.start_ts, row.end_ts or row.start_ts)
    return 1


PaddingOf = Callable[[str], Padding]


def enforce(db: Database, retention: float | None, max_size: int | None,
            now: float | None = None, gaps: GapStore | None = None,
            event_retention: float | None = None,
            padding: PaddingOf = lambda stream_id: Padding()) -> int:
    """Delete what is over the limits; returns how many segments were deleted. `padding`
    gives a stream's pre/post-roll around its events (what counts as event footage)."""
    now = time.time() if now is None else now
    limits = Limits(retention, event_retention, max_size)
    if not limits.active:
        return 0
    rows = {r.id: r for r in db.recordings(limit=10**9)}
    segments = [Segment(r.id, r.stream_id, r.start_ts,
                        None if r.status == "recording" else (r.end_ts or r.start_ts),
                        r.bytes or 0) for r in rows.values()]
    events = [EventSpan.of(eid, sid, start, end, active, padding(sid))
              for eid, sid, start, end, active in db.event_times()]
    decided = plan(segments, events, now, limits)
    deleted = sum(_expire(db, rows[seg_id], gaps) for seg_id in decided.segments)
    if decided.events:
        db.delete_events(decided.events)
    if deleted or decided.events:
        log.info("retention deleted %d segment(s) (%d for their age) and %d event(s)",
                 deleted, decided.by_age, len(decided.events),
                 extra={"event": "retention", "deleted": deleted,
                        "events_deleted": len(decided.events)})
    return deleted
