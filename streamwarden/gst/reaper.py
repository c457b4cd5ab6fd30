"""Disposal of detached elements off the GStreamer thread.

`set_state(NULL)` on a network source that is stuck in a connect or a read can block until
the socket gives up. Done on the GStreamer thread it would freeze every other stream, so a
source that has already been unlinked and removed from its pipeline (it can no longer touch
anything shared) is handed here and stopped on a thread of its own. This is the one state
change that does not run on the GStreamer thread, and it only ever touches orphaned elements.
"""

from __future__ import annotations

import logging
import queue
import threading

from streamwarden.gst.init import Gst

log = logging.getLogger(__name__)


class Reaper:
    """One background thread that sets orphaned elements to NULL, in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Gst.Element | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="gst-reaper", daemon=True)
        self._thread.start()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def dispose(self, element: Gst.Element) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(element)

    def _run(self) -> None:
        while True:
            element = self._queue.get()
            if element is None:
                return
            try:
                element.set_state(Gst.State.NULL)
            except Exception:  # never let one bad element stop disposal of the others
                log.exception("disposing %s failed", element.get_name())
            del element
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over so far is stopped (used at shutdown and tests)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(2)
