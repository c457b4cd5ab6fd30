"""Making the recordings index true to what is on disk: at start-up, and for a cut segment.

After a crash or `kill -9`: a segment still marked `recording` was cut; it is read through
(probe.played_seconds: demuxed, not decoded) and kept as `repaired` with the duration that
really plays (up to its last whole frame), or marked `corrupt` if nothing in it plays. A
segment cut while running (the disk filled up, a write failed) gets the same treatment as
soon as it is cut (`settle_segment`), except that what holds no playable frame goes: a
failed write leaves nothing worth a look, and on a full disk its bytes are better freed.
An empty file holds nothing either way: it goes, with its row.
Rows whose files are gone are dropped; segment files on disk that the index does not know
(copied back, index lost) are read the same way and indexed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from streamwarden.db import Database, RecordingRow
from streamwarden.ids import is_valid_stream_id
from streamwarden.recording.layout import start_time_from_name
from streamwarden.recording.probe import played_seconds
from streamwarden.recording.retention import delete_segment

log = logging.getLogger("streamwarden.recording")


@dataclass
class ReconcileReport:
    repaired: int = 0
    corrupt: int = 0
    dropped: int = 0
    orphans: int = 0
    removed: int = 0  # empty files, removed with their rows


def settle_segment(db: Database, row: RecordingRow, probe: bool = True,
                   keep_unplayable: bool = True) -> str:
    """Make one row true to its file (database thread). Returns what was done: `dropped`
    (file gone, row removed), `removed` (empty, or unplayable and not `keep_unplayable`:
    file and row removed), `repaired` (the playable duration measured), `corrupt` (nothing
    plays, kept), or `kept` (`probe` False)."""
    path = Path(row.path)
    try:
        size = os.path.getsize(path)
    except OSError:
        db.delete_recording(row.id)
        return "dropped"
    if size == 0:
        return "removed" if delete_segment(db, row) else "kept"
    if not probe:
        return "kept"
    duration = played_seconds(path)
    if duration:
        db.segment_closed(row.path, row.start_ts + duration, size, "repaired", duration)
        return "repaired"
    if not keep_unplayable:
        return "removed" if delete_segment(db, row) else "kept"
    db.segment_closed(row.path, row.start_ts, size, "corrupt", 0.0)
    return "corrupt"


def adopt_file(db: Database, stream_id: str, path: Path) -> str:
    """Index a segment file that has no row (database thread): `removed` if it is empty,
    else `orphans` (kept as `repaired` with what plays, or `corrupt`); `kept` if the name is
    not a segment's (not ours to touch)."""
    start = start_time_from_name(path)
    if start is None:
        return "kept"
    try:
        size = os.path.getsize(path)
    except OSError:
        return "kept"
    if size == 0:
        path.unlink(missing_ok=True)
        return "removed"
    duration = played_seconds(path)
    db.insert_segment(stream_id, str(path), start, start + (duration or 0.0), size, "orphan",
                      "repaired" if duration else "corrupt")
    return "orphans"


def _count(report: ReconcileReport, outcome: str) -> None:
    if outcome != "kept":
        setattr(report, outcome, getattr(report, outcome) + 1)


def reconcile(db: Database, base_path: Path) -> ReconcileReport:
    """Run on the database thread (db.call(reconcile, db, path)) before recording starts."""
    report = ReconcileReport()
    known = set()
    for row in db.recordings(limit=10**9):
        known.add(row.path)
        _count(report, settle_segment(db, row, probe=row.status == "recording"))
    if base_path.is_dir():
        for stream_dir in base_path.iterdir():
            if not stream_dir.is_dir() or not is_valid_stream_id(stream_dir.name):
                continue
            for path in sorted(stream_dir.glob("*/*")):
                if str(path) not in known:
                    _count(report, adopt_file(db, stream_dir.name, path))
    if any(vars(report).values()):
        log.warning("recordings index reconciled: %s", vars(report),
                    extra={"event": "reconcile", **vars(report)})
    return report
