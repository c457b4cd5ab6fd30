"""One thread that moves recorded frames from every recorder's appsinks into Python in batches.

A recorder's appsinks store the producer's buffers in C (see `appsink_buffer`); this thread
drains them every `PUMP_INTERVAL_S` into the ring and the open session. One wake-up handles a
batch of frames of every stream, where a callback per frame cost a thread hop, a signal
emission and a GIL hand-over for each one: the recorder's CPU per stream is mostly that.

Nothing here waits on anything but its own timer, and the recorder does the work under its
own lock, so the streaming threads (which drain too, before an event) and the GStreamer
thread (before a start or a stop) see frames in order. The thread exits when no recorder is
registered and is started again by the next one, so an idle or stopped service keeps none.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("streamwarden.recording")

# Frames wait at most this long in an appsink. Recording does not care about latency (starts
# and stops drain first); the longer, the fewer wake-ups. The appsinks hold several times
# this much before they drop anything.
PUMP_INTERVAL_S = 0.2


class Drainable(Protocol):
    def drain(self) -> None:
        """Take every frame waiting in the appsinks (any thread, never blocks for long)."""


class Pump:
    def __init__(self, interval: float = PUMP_INTERVAL_S):
        self.interval = interval
        self._lock = threading.Lock()
        self._members: list[Drainable] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, member: Drainable) -> None:
        with self._lock:
            if member not in self._members:
                self._members.append(member)
            if self._thread is None:
                self._wake.clear()
                self._thread = threading.Thread(target=self._run, name="rec-pump", daemon=True)
                self._thread.start()

    def unregister(self, member: Drainable) -> None:
        with self._lock:
            if member in self._members:
                self._members.remove(member)
            if not self._members:
                self._wake.set()  # let the thread see the empty list now

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                members = list(self._members)
                if not members:
                    self._thread = None
                    return
            for member in members:
                try:
                    member.drain()
                except Exception:  # one broken recorder must not stop the others
                    log.exception("recorder drain failed")


PUMP = Pump()
