"""Who needs a stream's decoded pixels: one decoder per stream while anyone does.

Inference, MJPEG viewers (and whatever comes next) each hold a claim on a stream's pixels,
with the rate they want. The first claim attaches the stream's `PixelConsumer` to the
stream's `pixel_source` (its detection sub-stream when it has a `detect_uri`, else the
stream itself), the decoder runs at the highest rate claimed, and the last release detaches
it: nothing decodes when nothing needs pixels, and two users never mean two decoders. Claims
and releases run on the GStreamer thread, like every consumer change.

When the sub-stream comes or goes in place (a PATCH or reload of `detect_uri`), the decoder
moves: a new one is attached to the new pixel source with the same rate and the same
inference feed, and the old one detached (`stream_changed`, or the next claim, whichever
comes first). Users find the current decoder with `consumer(stream)`, never keep one.

The activity gate (media/activity.py) applies only while inference is the decoder's one
user: a person watching the MJPEG view wants every frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamwarden.feature import Feature
from streamwarden.pixels.decoder import PixelConsumer

if TYPE_CHECKING:
    from streamwarden.config.model import StreamConfig
    from streamwarden.ingest.stream import Stream

GATED_USER = "inference"


class SharedPixels(Feature):
    def __init__(self, width: int):
        self.width = width
        self._claims: dict[str, dict[str, float]] = {}
        # per stream: the stream the decoder hangs on (main or sub-stream) and the decoder
        self._decoders: dict[str, tuple[Stream, PixelConsumer]] = {}

    def acquire(self, stream: Stream, user: str, fps: float) -> PixelConsumer:
        claims = self._claims.setdefault(stream.id, {})
        claims[user] = fps
        consumer = self._current(stream)
        if consumer is None:
            consumer = self._attach(stream.pixel_source, stream.id, max(claims.values()))
            self._decoders[stream.id] = (stream.pixel_source, consumer)
        else:
            consumer.set_fps(max(claims.values()))
        consumer.gate_bypassed = set(claims) != {GATED_USER}
        return consumer

    def release(self, stream: Stream, user: str) -> None:
        claims = self._claims.get(stream.id, {})
        claims.pop(user, None)
        consumer = self._current(stream)
        if not claims:
            self._claims.pop(stream.id, None)
            source, _ = self._decoders.pop(stream.id, (None, None))
            if source is not None and consumer is not None:
                source.detach(consumer)
        elif consumer is not None:
            consumer.set_fps(max(claims.values()))
            consumer.gate_bypassed = set(claims) != {GATED_USER}

    def consumer(self, stream: Stream) -> PixelConsumer | None:
        """The stream's decoder now (any thread), wherever it hangs."""
        found = self._decoders.get(stream.id)
        return found[1] if found is not None else None

    def _attach(self, source: Stream, stream_id: str, fps: float) -> PixelConsumer:
        counters = source.counters
        consumer = PixelConsumer(stream_id, fps, self.width, None,
                                 camera_counters=lambda: (counters.frames, counters.keyframes))
        source.attach(consumer)
        return consumer

    def _current(self, stream: Stream) -> PixelConsumer | None:
        """The decoder, moved first if the stream's pixel source changed (GStreamer thread)."""
        found = self._decoders.get(stream.id)
        if found is None:
            return None
        source, old = found
        if source is stream.pixel_source:
            return old
        source.detach(old)  # False if it went with a closed sub-stream: nothing to do
        new = self._attach(stream.pixel_source, stream.id, old.fps)
        new.feed(old.slot, old.on_frame, old.slot_fps)
        new.set_activity(old.activity_settings, old.on_unchanged)
        new.gate_bypassed = old.gate_bypassed
        self._decoders[stream.id] = (stream.pixel_source, new)
        return new

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        """Feature hook (GStreamer thread): a sub-stream came or went: move the decoder."""
        if stream.config.detect_uri != previous.detect_uri:
            self._current(stream)

    def stream_removed(self, stream: Stream) -> None:
        """Feature hook (GStreamer thread): the stream's consumers went with it."""
        self.forget(stream.id)

    def forget(self, stream_id: str) -> None:
        """The stream is being removed (its consumers go with it)."""
        self._claims.pop(stream_id, None)
        self._decoders.pop(stream_id, None)

    def users(self, stream_id: str) -> list[str]:
        return sorted(self._claims.get(stream_id, {}))
