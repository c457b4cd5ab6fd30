"""The "stream offline" slate RTSP readers see while their camera is down.

Encoded once per (codec, width, height) on a worker thread and kept in memory: two
intra-only frames (x264 alternates their idr_pic_id, so repeating them in turn is a valid
stream) of a dark picture saying "stream offline" at the camera's own size. The relay then
pushes them at a few frames per second from the GStreamer thread's tick: no live encoding,
and every slate frame decodes on its own, so a reader that joins during an outage shows the
slate at once. Until a slate is ready (a fraction of a second after first asked) the relay
simply sends nothing, as it did before slates existed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import dataclass

from streamwarden.gst.init import Gst

log = logging.getLogger("streamwarden.restream")

SLATE_TEXT = "stream offline"
_ENCODERS = {
    "video/x-h264": "x264enc speed-preset=ultrafast tune=zerolatency bframes=0 key-int-max=1 "
                    "! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
    "video/x-h265": "x265enc speed-preset=ultrafast tune=zerolatency key-int-max=1 "
                    "! h265parse ! video/x-h265,stream-format=byte-stream,alignment=au",
}


@dataclass(frozen=True)
class Slate:
    caps: Gst.Caps  # byte-stream with SPS/PPS in band; the size of the camera's picture
    frames: tuple[bytes, ...]  # every one a keyframe


def slate_key(caps: Gst.Caps | None) -> tuple[str, int, int] | None:
    """(codec caps name, width, height) for a camera's caps, or None if no slate fits them."""
    if caps is None or caps.get_size() == 0:
        return None
    s = caps.get_structure(0)
    ok_w, width = s.get_int("width")
    ok_h, height = s.get_int("height")
    if s.get_name() not in _ENCODERS or not (ok_w and ok_h) or width < 16 or height < 16:
        return None
    return s.get_name(), width, height


def encode_slate(codec: str, width: int, height: int, timeout_s: float = 30.0) -> Slate:
    """Encode the slate frames (blocking; a worker thread's job)."""
    font = max(8, height // 24)
    pipeline = Gst.parse_launch(
        f"videotestsrc pattern=solid-color foreground-color=0xff202020 num-buffers=2 ! "
        f"video/x-raw,format=I420,width={width},height={height},framerate=4/1 ! "
        f'textoverlay text="{SLATE_TEXT}" font-desc="Sans Bold {font}px" valignment=center '
        f"halignment=center shaded-background=false ! {_ENCODERS[codec]} ! "
        "appsink name=out sync=false")
    sink = pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    frames: list[bytes] = []
    caps = None
    try:
        while len(frames) < 2:
            sample = sink.emit("try-pull-sample", int(timeout_s * Gst.SECOND))
            if sample is None:
                break
            buffer = sample.get_buffer()
            caps = sample.get_caps()
            frames.append(bytes(buffer.extract_dup(0, buffer.get_size())))
    finally:
        pipeline.set_state(Gst.State.NULL)
    if len(frames) < 2 or caps is None:
        raise RuntimeError(f"the slate did not encode ({codec} {width}x{height})")
    return Slate(caps, tuple(frames))


class SlateCache:
    """Slates by (codec, size): `get` answers at once, encoding in the background if needed."""

    def __init__(self) -> None:
        self._ready: dict[tuple[str, int, int], Slate] = {}
        self._pending: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="slate")

    def get(self, caps: Gst.Caps | None) -> Slate | None:
        key = slate_key(caps)
        if key is None:
            return None
        with self._lock:
            slate = self._ready.get(key)
            if slate is None and key not in self._pending:
                self._pending.add(key)
                self._worker.submit(self._encode, key)
            return slate

    def _encode(self, key: tuple[str, int, int]) -> None:
        try:
            slate = encode_slate(*key)
        except Exception as exc:  # no slate for this size: readers see a pause, as before
            log.warning("restream: no slate for %s %dx%d: %s", *key, exc)
            return
        with self._lock:
            self._ready[key] = slate
            self._pending.discard(key)


SLATES = SlateCache()
