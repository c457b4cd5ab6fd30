"""When each camera was not streaming, for the recording timeline: a feature that stores a
stream's supervision changes as `offline` periods (history.py).

A stream is offline from the moment it is added until its first frame, and from its last
frame before supervision noticed an outage (`timeout` later) until it streams again. The
last frame's time, not the moment the outage was noticed, is where footage stops. Writes go
to the database thread; the hooks run on the GStreamer thread and never wait for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamwarden.db import Database
from streamwarden.feature import Feature
from streamwarden.ingest.supervisor import StreamState
from streamwarden.recording.history import OFFLINE, History

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream
    from streamwarden.ingest.supervisor import Transition

log = logging.getLogger("streamwarden.recording")


def last_frame_wall(stream: Stream, wall: float, monotonic_ns: int) -> float:
    """The stream's last video frame as wall-clock time (`wall` if it never had one)."""
    last = stream.counters.last_frame_ns
    return wall - max(0, monotonic_ns - last) / 1e9 if last else wall


class CameraPeriods(Feature):
    def __init__(self, db: Database, history: History):
        self._db = db
        self._history = history

    def _submit(self, fn: Callable[..., object], *args: object) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:  # the database on a full disk, typically: logged, not lost
                log.exception("storing a camera period failed")

        self._db.submit(run)

    def stream_added(self, stream: Stream) -> None:
        self._submit(self._history.period_started, stream.id, OFFLINE, time.time())

    def state_changed(self, stream: Stream, transition: Transition) -> None:
        if transition.new is StreamState.STOPPED:  # removed or shut down: not the camera
            return
        if transition.new is StreamState.STREAMING:
            self._submit(self._history.period_ended, stream.id, OFFLINE, time.time())
        elif transition.old is StreamState.STREAMING:
            since = last_frame_wall(stream, time.time(), time.monotonic_ns())
            self._submit(self._history.period_started, stream.id, OFFLINE, since)

    def stream_removed(self, stream: Stream) -> None:
        self._submit(self._history.period_ended, stream.id, OFFLINE, time.time())
