"""Disposal of detached elements off the GStreamer thread, where one stuck element holds up none.

`set_state(NULL)` on a network source that is stuck in a connect or a read can block until
the socket gives up, or for good if the element deadlocks in its own shutdown. Done on the
GStreamer thread it would freeze every other stream, so a source that has already been
unlinked and removed from its pipeline (it can no longer touch anything shared) is handed
here and stopped on a worker thread. This is the one state change that does not run on the
GStreamer thread, and it only ever touches orphaned elements.

One worker does the work in order. If an element takes longer than `stuck_after` seconds,
the reaper says so once (log line and `stuck` count, naming the element and its owner) and
starts another worker for the rest of the queue, so the disposals behind a stuck one still
happen and their threads end. A worker that finally comes back while another is running
ends itself, so the pool shrinks to one again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from streamwarden.gst.init import Gst

log = logging.getLogger(__name__)

STUCK_AFTER_S = 5.0


@dataclass
class _Job:
    element: Gst.Element
    owner: str
    started: float | None = None
    reported: bool = False


class Reaper:
    """Worker threads that set orphaned elements to NULL; a stuck one is worked around."""

    def __init__(self, stuck_after: float = STUCK_AFTER_S) -> None:
        self.stuck_after = stuck_after
        self.stuck = 0  # disposals that took longer than stuck_after (read by metrics)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._busy: dict[int, _Job] = {}  # worker number -> job in progress
        self._workers = 0
        self._next_worker = 0
        self._closed = threading.Event()
        self._start_worker()
        self._watch = threading.Thread(target=self._watch_loop, name="gst-reaper-watch",
                                       daemon=True)
        self._watch.start()

    def dispose(self, element: Gst.Element, owner: str = "") -> None:
        """Stop `element` (already out of its pipeline) on a worker thread; never blocks."""
        with self._lock:
            self._pending += 1
        self._queue.put(_Job(element, owner or element.get_name()))

    @property
    def workers(self) -> int:
        with self._lock:
            return self._workers

    def _start_worker(self) -> None:
        """Called with the lock held, or before any thread runs."""
        number = self._next_worker
        self._next_worker += 1
        self._workers += 1
        threading.Thread(target=self._run, args=(number,), name=f"gst-reaper-{number}",
                         daemon=True).start()

    def _run(self, number: int) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._queue.put(None)  # let the other workers see it too
                return
            self._dispose(number, job)
            with self._lock:
                if job.reported and self._workers > 1:
                    self._workers -= 1  # another worker took over while this one was stuck
                    return

    def _dispose(self, number: int, job: _Job) -> None:
        job.started = time.monotonic()
        with self._lock:
            self._busy[number] = job
        try:
            job.element.set_state(Gst.State.NULL)
        except Exception:  # never let one bad element stop disposal of the others
            log.exception("disposing %s failed", job.owner)
        elapsed = time.monotonic() - job.started
        if job.reported:
            log.info("%s stopped after %.1f s", job.owner, elapsed,
                     extra={"element": job.element.get_name()})
        job.element = None  # the last reference: the element is freed here
        with self._lock:
            del self._busy[number]
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _watch_loop(self) -> None:
        """Once a second: report stuck disposals and keep one worker free for the queue."""
        while not self._closed.wait(min(1.0, self.stuck_after / 2)):
            now = time.monotonic()
            with self._lock:
                stuck = [job for job in self._busy.values()
                         if job.started is not None and now - job.started >= self.stuck_after]
                fresh = [job for job in stuck if not job.reported]
                for job in fresh:
                    job.reported = True
                    self.stuck += 1
                if fresh and len(stuck) >= self._workers:
                    self._start_worker()
            for job in fresh:
                log.warning("%s did not stop within %g s (its shutdown is blocked); the "
                            "other disposals go on without it", job.owner, self.stuck_after,
                            extra={"element": job.element.get_name() if job.element else None})

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over so far is stopped (used at shutdown and tests)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)
