"""Segment events → the recordings table, off the GStreamer thread.

The recorder reports each segment as it opens (so a crash leaves a row saying `recording`)
and as it closes; the database thread does the I/O (file size, SQL).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from streamwarden.db import Database
from streamwarden.recording.recorder import SegmentListener

log = logging.getLogger("streamwarden.recording")


class RecordingIndex(SegmentListener):
    def __init__(self, db: Database, on_change=None, emit=None):
        self.db = db
        self._on_change = on_change
        self._emit = emit or (lambda event: None)

    def segment_opened(self, stream_id: str, path: Path, start_wall: float, reason: str) -> None:
        self.db.submit(self.db.segment_opened, stream_id, str(path), start_wall, reason)
        log.info("stream %s: segment opened %s", stream_id, path,
                 extra={"stream_id": stream_id, "event": "segment_opened", "path": str(path)})

    def segment_closed(self, stream_id: str, path: Path, end_wall: float) -> None:
        def close() -> None:
            try:
                size = os.path.getsize(path)
            except OSError:
                size = None
            self.db.segment_closed(str(path), end_wall, size)
            row = self.db.recording_by_path(str(path))
            if row is not None:
                self._emit({"type": "segment_closed", "stream_id": stream_id,
                            "recording_id": row.id, "duration": row.duration,
                            "bytes": row.bytes})
            if self._on_change is not None:
                self._on_change()

        self.db.submit(close)
        log.info("stream %s: segment closed %s", stream_id, path,
                 extra={"stream_id": stream_id, "event": "segment_closed", "path": str(path)})
