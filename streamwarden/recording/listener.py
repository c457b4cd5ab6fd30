"""What the recorder tells the rest of the service about its files and outages.

The recordings index implements it (index.py); a recorder without an index gets this no-op
base. Kept apart from the recorder so the index does not import GStreamer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamwarden.recording.outage import Gap, Outage


class SegmentListener:
    """Receives segment events (the index implements this). Called on the GStreamer thread:
    implementations hand their I/O to another thread."""

    def segment_opened(self, stream_id: str, path: Path, start_wall: float, reason: str) -> None:
        """A segment file was opened."""

    def segment_closed(self, stream_id: str, path: Path, end_wall: float,
                       cut: bool = False) -> None:
        """A segment file was finalised, or (`cut`) ended by an error part-way."""

    def outage_started(self, stream_id: str, outage: Outage) -> None:
        """Recording stopped working (reported once per outage, not per retry)."""

    def outage_ongoing(self, stream_id: str, now: float) -> None:
        """The outage still goes on at `now` (every few seconds)."""

    def outage_ended(self, stream_id: str, gap: Gap,
                     began_earlier: Callable[[float], None]) -> None:
        """The outage is over; `began_earlier(seconds)` if the gap proves longer than `gap`."""

    def recording_changed(self, stream_id: str, reason: str | None, wall: float) -> None:
        """Recording was requested for `reason` at `wall`, or no longer (`reason` None)."""

    def discontinuity(self, stream_id: str, wall: float, jump_seconds: float) -> None:
        """The camera's timestamps jumped by `jump_seconds` (signed) at `wall`; recording
        went on across it (the files' timeline is bridged, no frame lost)."""
