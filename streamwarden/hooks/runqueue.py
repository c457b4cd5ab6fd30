"""The hooks' concurrency limit: at most N runs at once, a bounded line of waiting ones.

Pure bookkeeping (no processes, no clock), so the limit and the drop rule are tested with
plain values. A run offered while N run and the line is full is dropped, never waited for:
hooks must not build up memory or hold up the notifier when commands are slow.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Offer(enum.Enum):
    START = "start"  # run it now
    QUEUED = "queued"  # it runs when a running one finishes
    DROPPED = "dropped"  # too many waiting already


class RunQueue(Generic[T]):
    def __init__(self, max_running: int, max_waiting: int):
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.running = 0
        self._waiting: deque[T] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def offer(self, item: T) -> Offer:
        if self.running < self.max_running:
            self.running += 1
            return Offer.START
        if len(self._waiting) < self.max_waiting:
            self._waiting.append(item)
            return Offer.QUEUED
        return Offer.DROPPED

    def finished(self) -> T | None:
        """A run ended: the next waiting item, now counted as running (None if none waits)."""
        if self._waiting:
            return self._waiting.popleft()
        self.running = max(0, self.running - 1)
        return None

    def clear(self) -> list[T]:
        """Shutting down: everything still waiting, taken out of the line."""
        items = list(self._waiting)
        self._waiting.clear()
        return items
