"""JPEG snapshots from the pre-event ring's newest keyframe, decoded once per burst.

A keyframe decodes on its own, so a snapshot needs no running decoder: the newest keyframe
is taken from the recorder's ring (a reference, no copy) and decoded once in a throwaway
pipeline. Requests within `CACHE_S` of each other share the result, so a dashboard of many
viewers costs one decode per stream per second at most. The picture is at most one GOP old.

The throwaway pipeline runs on a worker thread: it shares no element with any stream, so
it needs none of the GStreamer thread's serialisation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from streamwarden.gst.init import Gst

CACHE_S = 1.0
_DECODERS = {"video/x-h264": "h264parse ! avdec_h264", "video/x-h265": "h265parse ! avdec_h265"}


class SnapshotError(Exception):
    pass


@dataclass
class _Cached:
    at: float
    width: int | None
    jpeg: bytes


def decode_jpeg(buffer: Gst.Buffer, caps: Gst.Caps, width: int | None = None,
                timeout_s: float = 5.0) -> bytes:
    """One keyframe (with its caps) → JPEG bytes, optionally scaled to `width`."""
    decoder = _DECODERS.get(caps.get_structure(0).get_name())
    if decoder is None:
        raise SnapshotError(f"cannot decode {caps.get_structure(0).get_name()}")
    scale = (f"videoscale ! video/x-raw,width={width},pixel-aspect-ratio=1/1 ! "
             if width else "")
    pipeline = Gst.parse_launch(
        f'appsrc name=src format=time caps="{caps.to_string()}" ! {decoder} ! videoconvert ! '
        f"{scale}jpegenc quality=85 ! appsink name=out sync=false")
    src, out = pipeline.get_by_name("src"), pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    try:
        flags = (Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META
                 | Gst.BufferCopyFlags.MEMORY)
        frame = buffer.copy_region(flags, 0, buffer.get_size())
        frame.pts = frame.dts = 0
        src.emit("push-buffer", frame)
        src.emit("end-of-stream")
        sample = out.emit("try-pull-sample", int(timeout_s * Gst.SECOND))
        if sample is None:
            raise SnapshotError("the keyframe did not decode")
        data = sample.get_buffer().extract_dup(0, sample.get_buffer().get_size())
        return bytes(data)
    finally:
        pipeline.set_state(Gst.State.NULL)


class SnapshotCache:
    """Per stream: the last JPEG and when it was made; one decode at a time per stream."""

    def __init__(self) -> None:
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, stream_id: str, keyframe: tuple[Gst.Buffer, Gst.Caps] | None,
            width: int | None = None) -> bytes:
        with self._guard:
            lock = self._locks.setdefault(stream_id, threading.Lock())
        with lock:
            cached = self._cache.get(stream_id)
            if cached and cached.width == width and time.monotonic() - cached.at < CACHE_S:
                return cached.jpeg
            if keyframe is None:
                raise SnapshotError("no keyframe received yet")
            jpeg = decode_jpeg(*keyframe, width=width)
            self._cache[stream_id] = _Cached(time.monotonic(), width, jpeg)
            return jpeg

    def forget(self, stream_id: str) -> None:
        self._cache.pop(stream_id, None)
