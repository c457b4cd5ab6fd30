"""Storage limits: delete by age (`retention`) and by total size (`max_size`), oldest first.

Runs on the database thread, so a file and its index row go in the same step: the file is
removed first, then the row (a crash in between leaves a row whose file is gone, which the
next reconciliation drops). Segments still being written are never touched. What it deletes
is stored as a `deleted` gap (gaps.py), so the recording timeline says where footage went.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from streamwarden.db import Database, RecordingRow
from streamwarden.recording.gaps import GapStore

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


def enforce(db: Database, retention: float | None, max_size: int | None,
            now: float | None = None, gaps: GapStore | None = None) -> int:
    """Delete what is over the limits; returns how many segments were deleted."""
    now = time.time() if now is None else now
    deleted = 0
    finished = [r for r in db.recordings(limit=10**9) if r.status != "recording"]
    if retention is not None:
        for row in finished:
            if (row.end_ts or row.start_ts) < now - retention:
                deleted += _expire(db, row, gaps)
        finished = [r for r in db.recordings(limit=10**9) if r.status != "recording"]
    if max_size is not None:
        total = db.total_bytes()
        for row in finished:  # oldest first, across streams
            if total <= max_size:
                break
            if _expire(db, row, gaps):
                total -= row.bytes or 0
                deleted += 1
    if deleted:
        log.info("retention deleted %d segment(s)", deleted,
                 extra={"event": "retention", "deleted": deleted})
    return deleted
