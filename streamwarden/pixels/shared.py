"""Who needs a stream's decoded pixels: one decoder per stream while anyone does.

Inference, MJPEG viewers (and whatever comes next) each hold a claim on a stream's pixels,
with the rate they want. The first claim attaches the stream's `PixelConsumer`, the decoder
runs at the highest rate claimed, and the last release detaches it: nothing decodes when
nothing needs pixels, and two users never mean two decoders. Claims and releases run on the
GStreamer thread, like every consumer change. As a feature it only forgets a removed
stream's claims (its decoder went with the stream).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamwarden.feature import Feature
from streamwarden.pixels.decoder import PixelConsumer

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream


class SharedPixels(Feature):
    def __init__(self, width: int):
        self.width = width
        self._claims: dict[str, dict[str, float]] = {}

    def acquire(self, stream: Stream, user: str, fps: float) -> PixelConsumer:
        claims = self._claims.setdefault(stream.id, {})
        claims[user] = fps
        consumer = stream.consumer(PixelConsumer)
        if consumer is None:
            counters = stream.counters
            consumer = PixelConsumer(stream.id, max(claims.values()), self.width, None,
                                     camera_counters=lambda: (counters.frames,
                                                              counters.keyframes))
            stream.attach(consumer)
        else:
            consumer.set_fps(max(claims.values()))
        return consumer

    def release(self, stream: Stream, user: str) -> None:
        claims = self._claims.get(stream.id, {})
        claims.pop(user, None)
        consumer = stream.consumer(PixelConsumer)
        if not claims:
            self._claims.pop(stream.id, None)
            if consumer is not None:
                stream.detach(consumer)
        elif consumer is not None:
            consumer.set_fps(max(claims.values()))

    def stream_removed(self, stream: Stream) -> None:
        """Feature hook (GStreamer thread): the stream's consumers went with it."""
        self.forget(stream.id)

    def forget(self, stream_id: str) -> None:
        """The stream is being removed (its consumers go with it)."""
        self._claims.pop(stream_id, None)

    def users(self, stream_id: str) -> list[str]:
        return sorted(self._claims.get(stream_id, {}))
