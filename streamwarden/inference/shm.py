"""A per-stream frame slot in shared memory: latest frame wins, no queue, no lock.

The service's decoder thread writes; the worker process reads. Two pixel buffers alternate
(double buffering) and a sequence number published last says which one is newest, so the
writer never waits for the reader and the reader detects the rare case where the writer lapped
it during a copy (it then skips that frame). A slow model therefore sees fewer frames, never
older ones, and memory stays fixed.

The slot is a file in /dev/shm (tmpfs) mapped by both processes, rather than
`multiprocessing.shared_memory`, whose resource tracker in the reader process would unlink
the segment when a worker dies.

Layout: [seq u64][pad to 64] then per buffer: [width u32][height u32][stride u32][pad u32]
[pts i64][wall f64][pad to 64][pixels: capacity bytes].
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEQ = struct.Struct("<Q")
FRAME_HEADER = struct.Struct("<IIIIqd")
HEADER_SIZE = 64


def shm_dir() -> Path:
    path = Path("/dev/shm")
    return path if path.is_dir() and os.access(path, os.W_OK) else Path(tempfile.gettempdir())


@dataclass
class Frame:
    seq: int
    pts: int
    wall: float
    pixels: np.ndarray  # HxWx3 BGR, a private copy


class FrameSlot:
    def __init__(self, path: Path, capacity: int, create: bool):
        self.path = path
        self.capacity = capacity
        size = HEADER_SIZE + 2 * (HEADER_SIZE + capacity)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._seq = 0 if create else SEQ.unpack_from(self._map, 0)[0]

    @classmethod
    def create(cls, name: str, capacity: int) -> FrameSlot:
        path = shm_dir() / f"streamwarden-{os.getpid()}-{name}"
        if path.exists():
            path.unlink()
        return cls(path, capacity, create=True)

    @classmethod
    def attach(cls, path: str, capacity: int) -> FrameSlot:
        return cls(Path(path), capacity, create=False)

    def _offset(self, index: int) -> int:
        return HEADER_SIZE + index * (HEADER_SIZE + self.capacity)

    # ---- writer (service) ------------------------------------------------------------------

    def write(self, data: memoryview | bytes, width: int, height: int, stride: int, pts: int,
              wall: float) -> int:
        """Copy one frame in and publish it; returns its sequence number."""
        size = stride * height
        if size > self.capacity:
            raise ValueError(f"frame of {size} bytes exceeds the slot's {self.capacity}")
        seq = self._seq + 1
        offset = self._offset(seq % 2)
        FRAME_HEADER.pack_into(self._map, offset, width, height, stride, 0, pts, wall)
        self._map[offset + HEADER_SIZE:offset + HEADER_SIZE + size] = data[:size]
        SEQ.pack_into(self._map, 0, seq)
        self._seq = seq
        return seq

    # ---- reader (worker) -------------------------------------------------------------------

    def latest_seq(self) -> int:
        return SEQ.unpack_from(self._map, 0)[0]

    def read(self) -> Frame | None:
        """The newest frame, copied out, or None if the writer lapped this copy."""
        seq = self.latest_seq()
        if seq == 0:
            return None
        offset = self._offset(seq % 2)
        width, height, stride, _, pts, wall = FRAME_HEADER.unpack_from(self._map, offset)
        start = offset + HEADER_SIZE
        raw = np.frombuffer(self._map, dtype=np.uint8, count=stride * height, offset=start)
        pixels = raw.reshape(height, stride)[:, :width * 3].reshape(height, width, 3).copy()
        if self.latest_seq() - seq >= 2:  # the writer reused this buffer while we copied
            return None
        return Frame(seq, pts, wall, pixels)

    def close(self, unlink: bool = False) -> None:
        # A numpy view still alive keeps the mapping; it goes with the process.
        with contextlib.suppress(BufferError):
            self._map.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
