"""Start-up reconciliation of the recordings index with what is on disk.

After a crash or `kill -9`: a segment still marked `recording` was cut; it is probed and kept
as `repaired` with the duration it really has (fragmented MP4 plays up to its last fragment),
or marked `corrupt` if nothing in it plays. Rows whose files are gone are dropped; segment
files on disk that the index does not know (copied back, index lost) are probed and indexed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from streamwarden.db import Database
from streamwarden.ids import is_valid_stream_id
from streamwarden.recording.layout import start_time_from_name
from streamwarden.recording.probe import playable_duration

log = logging.getLogger("streamwarden.recording")


@dataclass
class ReconcileReport:
    repaired: int = 0
    corrupt: int = 0
    dropped: int = 0
    orphans: int = 0


def reconcile(db: Database, base_path: Path) -> ReconcileReport:
    """Run on the database thread (db.call(reconcile, db, path)) before recording starts."""
    report = ReconcileReport()
    known = set()
    for row in db.recordings(limit=10**9):
        path = Path(row.path)
        known.add(str(path))
        if not path.exists():
            db.delete_recording(row.id)
            report.dropped += 1
            continue
        if row.status != "recording":
            continue
        duration = playable_duration(path)
        size = os.path.getsize(path)
        if duration:
            db.segment_closed(row.path, row.start_ts + duration, size, "repaired", duration)
            report.repaired += 1
        else:
            db.segment_closed(row.path, row.start_ts, size, "corrupt", 0.0)
            report.corrupt += 1
    if base_path.is_dir():
        for stream_dir in base_path.iterdir():
            if not stream_dir.is_dir() or not is_valid_stream_id(stream_dir.name):
                continue
            for path in sorted(stream_dir.glob("*/*")):
                start = start_time_from_name(path)
                if start is None or str(path) in known:
                    continue
                duration = playable_duration(path)
                status = "repaired" if duration else "corrupt"
                db.insert_segment(stream_dir.name, str(path), start, start + (duration or 0.0),
                                  os.path.getsize(path), "orphan", status)
                report.orphans += 1
    if any(vars(report).values()):
        log.warning("recordings index reconciled: %s", vars(report),
                    extra={"event": "reconcile", **vars(report)})
    return report
