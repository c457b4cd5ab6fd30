"""heap.py: malloc's free pages go back to the system on a trim, and nothing else changes.

The fragmentation is made by hand, the way the service's threads make it: many small blocks,
most of them freed, a few kept between the holes so that malloc cannot shrink its heap from
the top and keeps the freed pages resident until `malloc_trim`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager

from streamwarden.heap import Heap, rss_bytes

LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
LIBC.malloc.restype = ctypes.c_void_p
LIBC.malloc.argtypes = [ctypes.c_size_t]
LIBC.free.argtypes = [ctypes.c_void_p]
BLOCK = 2048
MIB = 2**20


@contextmanager
def fragmented_heap(mib: int) -> Iterator[None]:
    """`mib` MiB of small blocks written to (resident), all freed but one in 64; the kept ones
    are freed on exit."""
    blocks = [LIBC.malloc(BLOCK) for _ in range(mib * MIB // BLOCK)]
    assert all(blocks)
    for block in blocks:
        ctypes.memset(block, 0x5A, BLOCK)
    kept = blocks[::64]
    for index, block in enumerate(blocks):
        if index % 64:
            LIBC.free(block)
    try:
        yield
    finally:
        for block in kept:
            LIBC.free(block)


def test_a_trim_gives_the_freed_pages_back_and_keeps_what_is_in_use():
    heap = Heap()
    assert heap.can_trim
    heap.trim()  # what earlier tests left behind
    with fragmented_heap(48):
        usage = heap.usage()
        assert usage is not None and usage.free >= 40 * MIB, "the holes are malloc's free bytes"
        resident = rss_bytes()
        released = heap.trim()
        assert released >= 32 * MIB, f"only {released / MIB:.1f} MiB given back"
        assert rss_bytes() <= resident - 32 * MIB
        after = heap.usage()
        assert after is not None and abs(after.in_use - usage.in_use) < 4 * MIB
    assert heap.trims == 2 and heap.released >= released


def test_without_malloc_trim_nothing_happens():
    heap = Heap(libc=object())  # type: ignore[arg-type]  # musl, macOS: no such symbols
    assert not heap.can_trim
    assert heap.trim() == 0 and heap.usage() is None and heap.trims == 0
