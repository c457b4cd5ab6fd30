"""Giving the C heap's free pages back to the system (glibc's `malloc_trim`).

Why: a soak under API churn (bench/soak.py, issue #11) showed the service's RSS climbing about
14 MiB/h for good while nothing it keeps grew: the Python heap (tracemalloc) and the bytes
malloc has handed out (`mallinfo2().uordblks`) were flat round after round, but the bytes
malloc holds *free* (`fordblks`) rose with the RSS. Every source attempt, recording segment
and viewer brings GStreamer streaming threads that allocate in glibc's per-thread arenas
(up to 8 per core) and go away; what they free leaves holes that malloc keeps and reuses only
in part, so the heaps widen. `malloc_trim(0)` hands every whole free page of every arena back
(madvise) without moving anything; done now and then, RSS stays at what is in use plus what
was reused since the last trim (one trim took 573 → 510 MiB in that run).

Plain ctypes, no GStreamer. Off glibc (musl, macOS) there is no `malloc_trim`: `Heap.trim`
then does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from dataclasses import dataclass

log = logging.getLogger("streamwarden.heap")

_PAGE = os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (2.33+): every field a size_t, summed over all arenas."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


@dataclass(frozen=True)
class HeapUsage:
    """malloc's own view (Python's small objects live in pymalloc's arenas, not here)."""

    in_use: int  # bytes handed out and not freed, mmapped blocks included
    free: int  # bytes freed but kept in the arenas: what a trim can give back, at most


def rss_bytes() -> int:
    """This process's resident set (`/proc/self/statm`, Linux), in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class Heap:
    """The process's C heap, if it is glibc's."""

    def __init__(self, libc: ctypes.CDLL | None = None):
        if libc is None:
            name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name) if name else None
        self._trim = getattr(libc, "malloc_trim", None)
        self._info = getattr(libc, "mallinfo2", None)
        if self._trim is not None:
            self._trim.argtypes = [ctypes.c_size_t]
            self._trim.restype = ctypes.c_int
        if self._info is not None:
            self._info.argtypes = []
            self._info.restype = _MallInfo2
        self.trims = 0
        self.released = 0  # bytes the trims took off the RSS, summed

    @property
    def can_trim(self) -> bool:
        return self._trim is not None

    def usage(self) -> HeapUsage | None:
        if self._info is None:
            return None
        info = self._info()
        return HeapUsage(in_use=info.uordblks + info.hblkhd, free=info.fordblks)

    def trim(self) -> int:
        """Give the free pages back; returns how much the RSS fell (0 off glibc).

        Takes each arena's lock in turn while it walks that arena's free chunks (a few ms for
        a few hundred MiB), so it runs on a worker thread, never on the event loop."""
        if self._trim is None:
            return 0
        before = rss_bytes()
        self._trim(0)
        released = max(0, before - rss_bytes())
        self.trims += 1
        self.released += released
        return released
