"""Live viewers on the asyncio side: one LiveMux per watched stream, a bounded queue per viewer.

The first viewer of a stream attaches its LiveMux (on the GStreamer thread), the last one to
leave detaches it, so nothing is muxed while nobody watches. Frames come from the mux's
streaming thread through `call_soon_threadsafe` (never blocks it) and are fanned out here:
a viewer gets the current init segment, then fragments from the next keyframe on. A viewer
whose queue is full is marked dropped and its socket is closed; no one ever waits for it.

As a feature it contributes `live_viewers` to each stream's health; it finds streams through
the registry and changes them on the GStreamer loop, never through the stream manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from streamwarden.feature import Feature
from streamwarden.live.mux import InitSegment, LiveMux

if TYPE_CHECKING:
    from streamwarden.gst.loop import GstLoop
    from streamwarden.ingest.registry import StreamRegistry
    from streamwarden.ingest.stream import Stream

log = logging.getLogger("streamwarden.live")

MUXED_CODECS = ("h264", "h265")  # whether the browser plays H.265 is for it to say (MSE)
QUEUE_FRAGMENTS = 100  # about 4 s at 25 fps: beyond that a viewer is too far behind to keep


class UnsupportedCodecError(Exception):
    pass


@dataclass(eq=False)
class Viewer:
    """One WebSocket: items are InitSegment or fragment bytes; None means "you are dropped"."""

    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAGMENTS))
    waiting_for_keyframe: bool = True
    has_init: bool = False
    dropped: bool = False
    reason: str = "dropped"  # why: dropped | stream_removed | unsupported_codec | shutting_down

    def offer(self, item: InitSegment | bytes) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.drop()

    def drop(self, reason: str = "dropped") -> None:
        """Discard what is queued and leave only the "you are dropped" marker."""
        self.dropped = True
        self.reason = reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(eq=False)
class _Watched:
    mux: LiveMux
    viewers: set[Viewer] = field(default_factory=set)


class LiveViewers(Feature):
    """Every browser watching a live view, by stream; asyncio thread only (but `health`)."""

    def __init__(self, streams: StreamRegistry, loop: GstLoop):
        self.streams = streams
        self.loop = loop
        self._watched: dict[str, _Watched] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def join(self, stream_id: str) -> Viewer:
        """Add a viewer; attaches the mux for the first one. Raises StreamNotFoundError or
        UnsupportedCodecError."""
        self._loop = asyncio.get_running_loop()
        async with self._lock:
            stream = self.streams.get(stream_id)
            codec = stream.media.video_codec
            if codec is not None and codec not in MUXED_CODECS:
                raise UnsupportedCodecError(codec)
            watched = self._watched.get(stream_id)
            if watched is not None and stream.consumer(LiveMux) is not watched.mux:
                self._forget(stream_id)  # the stream was removed (and maybe re-added)
                watched = None
            if watched is None:
                mux = LiveMux(stream_id, partial(self._from_mux, stream_id))
                # registered first: the mux may deliver its init segment during the attach
                watched = self._watched[stream_id] = _Watched(mux)
                try:
                    await self.loop.run(lambda: self.streams.get(stream_id).attach(mux))
                except BaseException:
                    del self._watched[stream_id]
                    raise
                log.info("live view of %s started", stream_id, extra={"stream_id": stream_id})
            viewer = Viewer()
            if watched.mux.init is not None:
                viewer.offer(watched.mux.init)
                viewer.has_init = True
            watched.viewers.add(viewer)
            watched.mux.viewers = len(watched.viewers)
            return viewer

    async def leave(self, stream_id: str, viewer: Viewer) -> None:
        """Remove a viewer; the last one out detaches the mux."""
        async with self._lock:
            watched = self._watched.get(stream_id)
            if watched is None or viewer not in watched.viewers:
                return
            watched.viewers.discard(viewer)
            watched.mux.viewers = len(watched.viewers)
            if watched.viewers:
                return
            del self._watched[stream_id]

            def detach() -> None:
                stream = self.streams.find(stream_id)
                if stream is not None:  # else removed meanwhile: its consumers went too
                    stream.detach(watched.mux, eos=False)

            await self.loop.run(detach)
            log.info("live view of %s stopped", stream_id, extra={"stream_id": stream_id})

    def _forget(self, stream_id: str, reason: str = "stream_removed") -> None:
        """Drop a stream's viewers without touching GStreamer (its mux is gone already)."""
        watched = self._watched.pop(stream_id, None)
        for viewer in watched.viewers if watched else ():
            viewer.drop(reason)

    async def check(self, stream_id: str) -> None:
        """While no frames come: drop the viewers if the stream or its mux went away, or if
        the camera turned out to send a codec browsers cannot play."""
        watched = self._watched.get(stream_id)
        if watched is None:
            return
        stream = self.streams.find(stream_id)
        if stream is not None and stream.consumer(LiveMux) is watched.mux:
            if watched.mux.unsupported:
                for viewer in list(watched.viewers):
                    if not viewer.dropped:
                        viewer.drop("unsupported_codec")
            return
        async with self._lock:
            if self._watched.get(stream_id) is watched:
                self._forget(stream_id)

    def health(self, stream: Stream) -> dict[str, Any]:
        """Feature hook (any thread): how many browsers watch `stream`."""
        mux = stream.consumer(LiveMux)
        return {"live_viewers": int(mux.stats().get("viewers", 0)) if mux is not None else 0}

    # ---- from the mux's streaming thread ---------------------------------------------------

    def _from_mux(self, stream_id: str, init: InitSegment | None, data: bytes | None,
                  keyframe: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(self._fan_out, stream_id, init, data, keyframe)

    def _fan_out(self, stream_id: str, init: InitSegment | None, data: bytes | None,
                 keyframe: bool) -> None:
        watched = self._watched.get(stream_id)
        if watched is None:
            return
        for viewer in list(watched.viewers):
            if viewer.dropped:
                continue
            if init is not None:
                viewer.offer(init)
                viewer.has_init = True
                viewer.waiting_for_keyframe = True  # new parameters: restart at a keyframe
                continue
            if data is None or not viewer.has_init or (
                    viewer.waiting_for_keyframe and not keyframe):
                continue
            viewer.waiting_for_keyframe = False
            viewer.offer(data)
